package modeldiff.forward.cuda;

import modeldiff.Fixtures;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.Implementations;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** cuda:fp16, host side: the spec, its name and dtype, refusals, and the 16-bit codecs the upload uses. */
class CudaFp16Test {
    @Test
    void specParsesLikeItsSiblings() {
        assertTrue(Implementations.available().contains("cuda:fp16"));
        assertEquals("cuda:fp16", Implementations.create("cuda:fp16").name());
        assertEquals("float16", Implementations.create("cuda:fp16").dtype());
        assertEquals("bfloat16", Implementations.create("cuda:bf16").dtype());
        assertEquals("float32", Implementations.create("cuda:fp32").dtype());
        BadInputException e = assertThrows(BadInputException.class, () -> Implementations.create("cuda:fp8"));
        assertTrue(e.getMessage().contains("cuda:fp16"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new CudaPass(Precision.FP64, Fixes.NONE));
    }

    /** The fixes it cannot honour are refused as for cuda:bf16, naming cuda:fp16, before any native call. */
    @Test
    void refusesSoftmaxLowpByName() {
        BadInputException e = assertThrows(BadInputException.class,
                () -> Implementations.create("cuda:fp16", Fixes.parse("softmax.lowp")));
        assertTrue(e.getMessage().startsWith("cuda:fp16 cannot honour fix softmax.lowp"), e.getMessage());
    }

    @Test
    void unavailableIsABadInputWithTheReason() {
        assumeFalse(CudaRuntime.available(), "CUDA is available here; the unavailable path is not exercised");
        Model m = Model.open(Fixtures.model("llama"));
        BadInputException e = assertThrows(BadInputException.class,
                () -> Implementations.create("cuda:fp16").run(m, new ForwardInput(new int[]{1, 2}, 0), ProbeLevel.LAYERS));
        assertTrue(e.getMessage().startsWith("cuda:fp16 unavailable: "), e.getMessage());
    }

    /**
     * The weights' 16-bit bits: IEEE half as torch's .to(float16) (values from the format's definition: 1 + 2⁻¹⁰ is
     * the next half after 1, 65504 the largest, 2⁻²⁴ the smallest subnormal, beyond 65520 is inf).
     */
    @Test
    void halfCodec() {
        assertEquals((short) 0x3C00, CudaRuntime.bits16(1f, true));
        assertEquals((short) 0x3C01, CudaRuntime.bits16(1f + 0x1p-10f, true));
        assertEquals((short) 0x3C00, CudaRuntime.bits16(1f + 0x1p-11f, true));   // tie to even
        assertEquals((short) 0x3C02, CudaRuntime.bits16(1f + 0x3p-11f, true));   // tie to even, upwards
        assertEquals((short) 0x7BFF, CudaRuntime.bits16(65504f, true));
        assertEquals((short) 0x7C00, CudaRuntime.bits16(65520f, true));
        assertEquals((short) 0x0001, CudaRuntime.bits16(0x1p-24f, true));
        assertEquals(Float.POSITIVE_INFINITY, CudaRuntime.round16(1e5f, true));
        assertEquals((short) 0x3F80, CudaRuntime.bits16(1f, false));             // bfloat16 when not fp16
        assertEquals(1f, CudaRuntime.round16(1f + 0x1p-10f, false));             // below bf16's half-ulp 2⁻⁸
    }
}
