package modeldiff.forward;

import modeldiff.forward.reference.ReferencePass;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.torch.TorchPass;
import modeldiff.model.BadInputException;
import modeldiff.numeric.Precision;

import java.util.List;

/** Maps an implementation spec ("reference", "lowp:bf16", ...) to a pass. */
public final class Implementations {
    private Implementations() {
    }

    public static List<String> available() {
        return List.of("reference", "lowp:bf16", "lowp:fp16", "lowp:fp32", "cuda:fp32", "cuda:bf16", "cuda:fp16", "torch:fp32", "torch:fp16");
    }

    public static ForwardPass create(String spec) {
        return create(spec, Fixes.NONE);
    }

    /** A pass with fixes applied (the configurable implementations: reference, lowp, cuda and torch). */
    public static ForwardPass create(String spec, Fixes fixes) {
        if (spec.equals("reference")) return new ReferencePass(fixes);
        if (spec.startsWith("lowp:")) {
            Precision p;
            try {
                p = Precision.parse(spec.substring(5));
            } catch (IllegalArgumentException e) {
                throw new BadInputException("unknown precision in '" + spec + "'; use lowp:bf16, lowp:fp16 or lowp:fp32");
            }
            return new LowpPass(p, fixes);
        }
        if (spec.equals("cuda:fp32") || spec.equals("cuda:bf16") || spec.equals("cuda:fp16"))
            return new modeldiff.forward.cuda.CudaPass(Precision.parse(spec.substring(5)), fixes);
        if (spec.startsWith("cuda:"))
            throw new BadInputException("unknown precision in '" + spec + "'; use cuda:fp32, cuda:bf16 or cuda:fp16");
        if (spec.startsWith("torch:")) {
            // torch:bf16 parses and is then refused by TorchPass, in Java (DJL 0.36.0 aborts the JVM on bfloat16).
            Precision p;
            try {
                p = Precision.parse(spec.substring(6));
            } catch (IllegalArgumentException e) {
                throw new BadInputException("unknown precision in '" + spec + "'; use torch:fp32 or torch:fp16");
            }
            return new TorchPass(p, fixes);
        }
        throw new BadInputException("unknown implementation '" + spec + "'; available: " + String.join(", ", available()));
    }
}
