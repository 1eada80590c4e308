package modeldiff.cli;

import modeldiff.forward.Fixes;
import modeldiff.hunt.Catalog;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "fixes", mixinStandardHelpOptions = true, sortOptions = false, description = "List the fix catalog the hunt draws from.")
final class FixesCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        for (Catalog.Entry e : Catalog.ENTRIES) {
            System.out.printf("%-24s %s%n", e.id(), e.meaning());
            System.out.printf("%-24s applies to: %s; honoured by: %s%n", "", e.appliesTo(),
                    e.honouredBy() == Catalog.Honoured.BOTH ? "reference, lowp" : "lowp only (a rounding choice)");
            if (e.source() != null) System.out.printf("%-24s seen in: %s%n", "", e.source());
        }
        // Fixes a pass applies but the hunt does not try (no catalog entry): listed so --fixes users can find them.
        for (Fixes.Key k : Fixes.Key.values())
            if (Catalog.entry(k.id + "=1") == null) System.out.printf("%-24s %s (not tried by the hunt)%n", k.id + "=S", k.meaning);
        return 0;
    }
}
