package modeldiff.cli;

import modeldiff.forward.cuda.CudaRuntime;
import modeldiff.forward.torch.TorchRuntime;

import java.util.ArrayList;
import java.util.List;

/** What this machine can run, and why not: shared by `--impl` help and `modeldiff doctor`. */
final class Availability {
    /** One line of the doctor's table; {@code detail} says what was found, or why it is missing. */
    record Row(String component, boolean available, String detail) {
    }

    static final String TOKENIZER_CLASS = "ai.djl.huggingface.tokenizers.HuggingFaceTokenizer";

    private Availability() {
    }

    static Row java() {
        return new Row("java", true, System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ")");
    }

    /** The float64 kernels use it when the JVM was started with --add-modules jdk.incubator.vector (the launcher does). */
    static Row vectorApi() {
        boolean on = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
        return new Row("Vector API", on, on ? "jdk.incubator.vector loaded: vectorised float64 kernels"
                : "jdk.incubator.vector not loaded (start java with --add-modules jdk.incubator.vector); scalar kernels, same results, slower");
    }

    static Row torch() {
        String why = TorchRuntime.unavailableReason();
        return new Row("torch (torch:fp32, torch:fp16)", why == null, why == null ? "libtorch " + TorchRuntime.version() + " through DJL" : why);
    }

    static Row cuda() {
        String why = CudaRuntime.unavailableReason();
        return new Row("CUDA (cuda:fp32, cuda:bf16, cuda:fp16)", why == null, why == null ? "GPU found, kernels loaded" : why);
    }

    /** Another part adds the HF tokenizers binding; until its class is on the class path, text input is unavailable. */
    static Row tokenizer() {
        try {
            Class.forName(TOKENIZER_CLASS, false, Availability.class.getClassLoader());
            return new Row("tokenizer (HF tokenizers)", true, TOKENIZER_CLASS + " on the class path");
        } catch (ClassNotFoundException | LinkageError e) {
            return new Row("tokenizer (HF tokenizers)", false, TOKENIZER_CLASS + " not on the class path");
        }
    }

    static List<Row> all() {
        List<Row> rows = new ArrayList<>();
        rows.add(java());
        rows.add(vectorApi());
        rows.add(torch());
        rows.add(cuda());
        rows.add(tokenizer());
        return rows;
    }

    /** The implementations, grouped, with whether each group runs here: the text of every --impl option's help. */
    static String implementations() {
        Row t = torch(), c = cuda();
        return "reference, lowp:bf16, lowp:fp16, lowp:fp32 (pure Java, always available); torch:fp32, torch:fp16 ("
                + status(t) + "); cuda:fp32, cuda:bf16, cuda:fp16 (" + status(c) + ")";
    }

    private static String status(Row r) {
        return r.available() ? "available here" : "not available here: " + r.detail();
    }
}
