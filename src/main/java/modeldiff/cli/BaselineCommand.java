package modeldiff.cli;

import modeldiff.release.Baseline;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "baseline", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Accept a known deviation of a release check, with a reason (the only way the baseline changes).")
final class BaselineCommand implements Callable<Integer> {
    @Option(names = "--release", required = true, paramLabel = "NAME", description = "Release name (the model folder's name, or its parent's when it is called 'model').")
    String release;

    @Option(names = "--accept", required = true, paramLabel = "CHECK", description = "Check id, e.g. impl:torch:fp16 or trace:hf-bfloat16.safetensors.")
    String check;

    @Option(names = "--reason", required = true, paramLabel = "TEXT", description = "Why this deviation is acceptable.")
    String reason;

    @Option(names = "--dir", defaultValue = Baseline.DEFAULT_DIR_TEXT, paramLabel = "DIR",
            description = "Baseline folder, the one `modeldiff check` and ModelReleaseTest read (default: ${DEFAULT-VALUE}).")
    Path dir;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Override
    public Integer call() {
        Baseline b = new Baseline(dir);
        b.accept(release, check, reason);
        System.out.println("accepted " + check + " for " + release + " in " + b.file(release));
        return 0;
    }
}
