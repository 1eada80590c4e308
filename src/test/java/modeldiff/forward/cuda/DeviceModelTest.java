package modeldiff.forward.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CPU-only parts of the CUDA pass: the weight-budget property's syntax and the page-locked block limit. */
class DeviceModelTest {
    @Test
    void budgetSizes() {
        assertEquals(123, DeviceModel.parseBytes("123"));
        assertEquals(6L << 30, DeviceModel.parseBytes("6g"));
        assertEquals(6L << 30, DeviceModel.parseBytes(" 6G "));
        assertEquals(512L << 20, DeviceModel.parseBytes("512m"));
        assertEquals(3L << 9, DeviceModel.parseBytes("1.5k"));
        assertEquals(1L << 40, DeviceModel.parseBytes("1t"));
    }

    @Test
    void pinnedBlocksFitOneByteBuffer() {
        assertTrue(ProbeCopier.MAX_PINNED_BLOCK <= Integer.MAX_VALUE);
        assertEquals(0, ProbeCopier.MAX_PINNED_BLOCK % 4096);
    }
}
