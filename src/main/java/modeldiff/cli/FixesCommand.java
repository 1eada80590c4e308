package modeldiff.cli;

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
        return 0;
    }
}
