package modeldiff.numeric;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PrecisionBasicsTest {

    @ParameterizedTest
    @CsvSource({
        "float64, FP64", "fp64, FP64", "f64, FP64", "double, FP64", "torch.float64, FP64", "DOUBLE, FP64",
        "float32, FP32", "fp32, FP32", "f32, FP32", "float, FP32", " Float32 , FP32",
        "bfloat16, BF16", "bf16, BF16", "torch.bfloat16, BF16",
        "float16, FP16", "fp16, FP16", "f16, FP16", "half, FP16",
        "float8_e4m3fn, FP8_E4M3", "fp8_e4m3, FP8_E4M3", "e4m3fn, FP8_E4M3",
        "float8_e5m2, FP8_E5M2", "fp8_e5m2, FP8_E5M2", "e5m2, FP8_E5M2",
    })
    void parsesIdsAndShortForms(String name, Precision want) {
        assertEquals(want, Precision.parse(name));
    }

    @Test
    void idsMatchTorchDtypeNames() {
        assertEquals("float64", Precision.FP64.id());
        assertEquals("float32", Precision.FP32.id());
        assertEquals("bfloat16", Precision.BF16.id());
        assertEquals("float16", Precision.FP16.id());
        assertEquals("float8_e4m3fn", Precision.FP8_E4M3.id());
        assertEquals("float8_e5m2", Precision.FP8_E5M2.id());
        for (Precision p : Precision.values()) assertEquals(p, Precision.parse(p.id()));
    }

    @Test
    void unknownNameListsValidOnes() {
        var e = assertThrows(IllegalArgumentException.class, () -> Precision.parse("fp12"));
        assertTrue(e.getMessage().contains("'fp12'"), e.getMessage());
        for (Precision p : Precision.values()) assertTrue(e.getMessage().contains(p.id()), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Precision.parse(null));
        assertThrows(IllegalArgumentException.class, () -> Precision.parse(""));
    }

    @Test
    void epsilonIsUnitRoundoff() {
        assertEquals(0x1p-53, Precision.FP64.epsilon());
        assertEquals(0x1p-24, Precision.FP32.epsilon());
        assertEquals(0x1p-8, Precision.BF16.epsilon());
        assertEquals(0x1p-11, Precision.FP16.epsilon());
        assertEquals(0x1p-4, Precision.FP8_E4M3.epsilon());
        assertEquals(0x1p-3, Precision.FP8_E5M2.epsilon());
        // torch.finfo(dtype).eps is the gap after 1.0, i.e. twice the unit roundoff.
        assertEquals(Math.ulp(1.0f), 2 * Precision.FP32.epsilon());
    }

    @Test
    void limits() {
        assertEquals(Double.MAX_VALUE, Precision.FP64.maxFinite());
        assertEquals(Float.MAX_VALUE, Precision.FP32.maxFinite());
        assertEquals(3.3895313892515355e38, Precision.BF16.maxFinite());
        assertEquals(65504.0, Precision.FP16.maxFinite());
        assertEquals(448.0, Precision.FP8_E4M3.maxFinite());
        assertEquals(57344.0, Precision.FP8_E5M2.maxFinite());
        assertEquals(Double.MIN_NORMAL, Precision.FP64.minNormal());
        assertEquals(Double.MIN_VALUE, Precision.FP64.minSubnormal());
        assertEquals(Float.MIN_NORMAL, Precision.FP32.minNormal());
        assertEquals(Float.MIN_VALUE, Precision.FP32.minSubnormal());
        assertEquals(Float.MIN_NORMAL, Precision.BF16.minNormal());
        assertEquals(0x1p-133, Precision.BF16.minSubnormal());
        assertEquals(0x1p-6, Precision.FP8_E4M3.minNormal());
        assertEquals(0x1p-9, Precision.FP8_E4M3.minSubnormal());
        assertEquals(0x1p-14, Precision.FP8_E5M2.minNormal());
        assertEquals(0x1p-16, Precision.FP8_E5M2.minSubnormal());
        assertEquals(16, Precision.BF16.bits());
        assertEquals(8, Precision.FP8_E5M2.bits());
    }

    @Test
    void bitsApi() {
        assertEquals(0x3F800000, Precision.FP32.toBits(1f));
        assertEquals(1f, Precision.FP32.fromBits(0x3F800000));
        assertEquals(0x3C00, Precision.FP16.toBits(1f));
        assertEquals(0x3F80, Precision.BF16.toBits(1f));
        assertEquals(0x38, Precision.FP8_E4M3.toBits(1f));
        assertEquals(0x3C, Precision.FP8_E5M2.toBits(1f));
        assertThrows(UnsupportedOperationException.class, () -> Precision.FP64.toBits(1f));
        assertThrows(UnsupportedOperationException.class, () -> Precision.FP64.fromBits(0));
        assertThrows(IllegalArgumentException.class, () -> Precision.FP16.fromBits(0x10000));
        assertThrows(IllegalArgumentException.class, () -> Precision.FP8_E4M3.fromBits(-1));
    }
}
