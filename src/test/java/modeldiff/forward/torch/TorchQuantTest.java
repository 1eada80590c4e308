package modeldiff.forward.torch;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** The torch pass reads quantized releases through the same seam: identical to the dequantized copies numpy wrote. */
class TorchQuantTest {
    static final Path QUANT = Path.of("src/test/resources/quant");

    @Test
    void quantizedReleasesRunAsTheirDequantizedCopies() {
        TorchTests.assumeTorch();
        ForwardInput in = new ForwardInput(new int[]{1, 17, 42, 99, 3, 250, 7, 8}, 0);
        for (String[] pair : new String[][]{{"llama_fp8", "llama_fp8_dequant"}, {"gpt_oss_mxfp4", "gpt_oss_dequant"}})
            for (Precision p : new Precision[]{Precision.FP32, Precision.FP16}) {
                Trace a = new TorchPass(p, Fixes.NONE).run(Model.open(QUANT.resolve(pair[0])), in, ProbeLevel.ALL);
                Trace b = new TorchPass(p, Fixes.NONE).run(Model.open(QUANT.resolve(pair[1])), in, ProbeLevel.ALL);
                for (String n : a.probeNames()) assertArrayEquals(b.probe(n).data(), a.probe(n).data(), pair[0] + " torch " + p + " " + n);
            }
    }
}
