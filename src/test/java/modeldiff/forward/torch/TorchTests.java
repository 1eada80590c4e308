package modeldiff.forward.torch;

import org.junit.jupiter.api.Assumptions;

/** Shared by the torch tests: skip visibly, with DJL's reason, when libtorch can't load on this machine. */
final class TorchTests {
    private TorchTests() {
    }

    static void assumeTorch() {
        String reason = TorchRuntime.unavailableReason();
        if (reason != null) System.out.println("SKIPPED torch tests: PyTorch native library unavailable: " + reason);
        Assumptions.assumeTrue(reason == null, () -> "PyTorch native library unavailable: " + reason);
    }
}
