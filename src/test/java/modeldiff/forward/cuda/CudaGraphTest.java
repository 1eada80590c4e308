package modeldiff.forward.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** CUDA graphs (and the fused residual), host side: off unless asked for; a graph is reused only for the same tokens count, offset, scratch and dtype. */
class CudaGraphTest {
    @Test
    void offByDefault() {
        String saved = System.getProperty("modeldiff.cuda.graphs");
        try {
            System.clearProperty("modeldiff.cuda.graphs");
            assertFalse(CudaGraph.enabled());
        } finally {
            if (saved != null) System.setProperty("modeldiff.cuda.graphs", saved);
        }
    }

    /** The fused residual epilogue is a switch too, off unless -Dmodeldiff.cuda.fuseResidual=true. */
    @Test
    void fusedResidualOffByDefault() {
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getProperty("modeldiff.cuda.fuseResidual") == null);
        assertFalse(new CudaPass(true, modeldiff.forward.Fixes.NONE).fuseResidual);
    }

    @Test
    void keyNamesWhatTheCaptureFixed() {
        assertEquals(new CudaGraph.Key(2048, 0, 1, false), new CudaGraph.Key(2048, 0, 1, false));
        assertNotEquals(new CudaGraph.Key(2048, 0, 1, false), new CudaGraph.Key(2047, 0, 1, false));
        assertNotEquals(new CudaGraph.Key(2048, 0, 1, false), new CudaGraph.Key(2048, 3, 1, false));
        assertNotEquals(new CudaGraph.Key(2048, 0, 1, false), new CudaGraph.Key(2048, 0, 2, false));   // scratch moved
        assertNotEquals(new CudaGraph.Key(2048, 0, 1, false), new CudaGraph.Key(2048, 0, 1, true));
    }
}
