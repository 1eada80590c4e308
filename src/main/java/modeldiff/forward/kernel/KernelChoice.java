package modeldiff.forward.kernel;

/** Picks the kernel once per JVM. Only this class names VectorKernel, and only when its module is present. */
final class KernelChoice {
    private KernelChoice() {
    }

    static final PanelKernel BEST = pick();
    static final FloatChainKernel BEST_FLOAT = pickFloat();

    private static FloatChainKernel pickFloat() {
        if (Boolean.getBoolean("modeldiff.scalar")) return FloatChainKernel.scalar();
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) return FloatChainKernel.scalar();
        try {
            FloatChainKernel v = FloatVectorKernel.create();
            return v != null ? v : FloatChainKernel.scalar();
        } catch (LinkageError e) {
            return FloatChainKernel.scalar();
        }
    }

    private static PanelKernel pick() {
        if (Boolean.getBoolean("modeldiff.scalar")) return ScalarKernel.INSTANCE;
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) return ScalarKernel.INSTANCE;
        try {
            PanelKernel v = VectorKernel.create();
            return v != null ? v : ScalarKernel.INSTANCE;
        } catch (LinkageError e) {
            return ScalarKernel.INSTANCE;
        }
    }
}
