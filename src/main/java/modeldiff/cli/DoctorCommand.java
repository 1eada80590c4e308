package modeldiff.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "doctor", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Say what this machine can run: Java, the Vector API, torch, CUDA and the tokenizer, in one table.",
                "Always exits 0: a missing optional part is information, not an error."})
final class DoctorCommand implements Callable<Integer> {
    @Mixin
    GlobalOptions global;

    @Override
    public Integer call() {
        List<Availability.Row> rows = Availability.all();
        int w = rows.stream().mapToInt(r -> r.component().length()).max().orElse(10);
        for (Availability.Row r : rows)
            System.out.printf("%-" + w + "s  %-3s  %s%n", r.component(), r.available() ? "yes" : "no", r.detail());
        return Main.EXIT_CLEAN;
    }
}
