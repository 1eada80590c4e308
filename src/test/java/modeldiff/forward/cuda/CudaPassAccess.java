package modeldiff.forward.cuda;

import modeldiff.forward.Fixes;
import modeldiff.model.Model;

/** Test access to the cuda pass's refusals (package-private), for tests outside this package. */
public final class CudaPassAccess {
    private CudaPassAccess() {
    }

    /** Throws the BadInputException the cuda pass would throw for this model before touching the GPU, else nothing. */
    public static void refuse(Model m) {
        CudaPass.refuseUnimplemented(m, Fixes.NONE);
        CudaPass.refuseUnsupported("cuda", m, false);
    }
}
