package modeldiff.forward.cuda;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every kernel against float64 on the CPU at odd shapes, with guard words around the outputs (GPU only). */
class CudaKernelsTest {
    @Test
    void kernelsMatchFloat64() {
        CudaRuntime rt = Gpu.require();
        List<KernelChecks.Result> rs = new KernelChecks(rt).runAll();
        KernelChecks.print(rs, System.out::println);
        assertTrue(rs.stream().allMatch(KernelChecks.Result::ok), "kernel checks failed (see output)");
    }
}
