package modeldiff.forward.cuda;

import org.junit.jupiter.api.Assumptions;

import static org.junit.jupiter.api.Assertions.fail;

/** GPU tests skip visibly (with the reason) where CUDA is unavailable, unless run with -Pgpu (then they fail). */
final class Gpu {
    private Gpu() {
    }

    static CudaRuntime require() {
        CudaRuntime rt = CudaRuntime.get();
        if (rt == null) {
            String why = "CUDA unavailable: " + CudaRuntime.unavailableReason();
            if ("required".equals(System.getProperty("modeldiff.gpu"))) fail(why + " (-Pgpu requires a GPU)");
            Assumptions.abort(why);
        }
        return rt;
    }
}
