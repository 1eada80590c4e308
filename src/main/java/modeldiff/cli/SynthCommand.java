package modeldiff.cli;

import modeldiff.model.DType;
import modeldiff.synth.Shapes;
import modeldiff.synth.SyntheticModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "synth", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write a model of a real release's shape (its exact config.json, HF sharding) with seeded random weights.")
final class SynthCommand implements Callable<Integer> {
    @Option(names = "--shape", required = true, paramLabel = "NAME",
            description = "tinyllama-1.1b, gemma-2b, llama2-7b, llama2-13b, llama3-8b, llama3-70b (141 GB; see --layers), mistral-7b, "
                    + "or the MoE shapes gpt-oss-20b (bf16 experts, not MXFP4; about 42 GB) and qwen3-30b-a3b (about 61 GB).")
    String shape;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Model folder to create.")
    Path out;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--layers", paramLabel = "N", description = "Decoder layers to write (default: the release's own count).")
    Integer layers;

    @Option(names = "--dtype", defaultValue = "bf16", description = "bf16 | fp16 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--force", description = "Write into a folder that is not empty.")
    boolean force;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Override
    public Integer call() {
        DType dt = switch (dtype.toLowerCase(java.util.Locale.ROOT)) {
            case "bf16", "bfloat16" -> DType.BF16;
            case "fp16", "f16", "float16" -> DType.F16;
            default -> throw new modeldiff.model.BadInputException("--dtype must be bf16 or fp16, got '" + dtype + "'");
        };
        Shapes.configJson(shape); // unknown names fail before anything is created
        Progress p = Progress.stderr();
        long t0 = System.nanoTime();
        SyntheticModel.Result r = SyntheticModel.write(shape, out, seed, layers, dt, force, p::show);
        p.done();
        System.out.printf("wrote %s: %s shape (config of %s), %d tensors, %.2f GB in %d shard(s), %.1f s%n", r.dir(), shape,
                Shapes.SOURCES.get(shape), r.tensors(), r.bytes() / 1e9, r.shards(), (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
