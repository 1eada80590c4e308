package modeldiff.forward.kernel;

/** Picks the kernel once per JVM. Only this class names VectorKernel, and only when its module is present. */
final class Kernels {
    private Kernels() {
    }

    static final PanelKernel BEST = pick();

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
