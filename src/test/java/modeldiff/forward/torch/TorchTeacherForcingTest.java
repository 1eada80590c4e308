package modeldiff.forward.torch;

import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * torch:fp32 teacher-forced (forward/Recorder): each probe computed from the teacher's input to it. The fp32 band is
 * the one the torch parity test holds torch:fp32 to against float64 (log-L2 ≤ −5, TorchParityTest): one fp32 operation
 * from the teacher's input costs less than a whole fp32 forward.
 */
class TorchTeacherForcingTest {
    private static final double FP32_NOISE = -5.0;

    @BeforeAll
    static void nativeLibrary() {
        TorchTests.assumeTorch();
    }

    /** Forced by HF's own float32 run (CUDA kernels), torch:fp32 (CPU kernels) is within fp32 noise of it at every probe. */
    @TestFactory
    List<DynamicTest> forcedByHfFloat32StaysWithinFp32Noise() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : Fixtures.names()) {
            Path tp = Fixtures.trace(name, "hf-float32.safetensors");
            if (!Files.exists(tp) || TorchParityTest.MOE_FIXTURES.contains(name)) continue;   // refused (MoeFixturesTest)
            tests.add(DynamicTest.dynamicTest(name, () -> {
                Trace hf = TraceFiles.read(tp);
                Trace forced = new TorchPass(Precision.FP32, Fixes.NONE)
                        .run(Model.open(Fixtures.model(name)), ForwardInput.forcedBy(hf), ProbeLevel.ALL);
                assertTrue(forced.extra().containsKey("teacher_forced"));
                double worst = Double.NEGATIVE_INFINITY;
                String worstProbe = null;
                for (String probe : hf.probeNames()) {
                    double e = Metrics.logL2(hf.probe(probe).data(), forced.probe(probe).data());
                    if (e > worst) {
                        worst = e;
                        worstProbe = probe;
                    }
                }
                System.out.printf("torch:fp32 forced by %s/hf-float32: worst probe %s at %.2f%n", name, worstProbe, worst);
                assertTrue(worst <= FP32_NOISE, name + ": " + worstProbe + " at " + worst);
            }));
        }
        assertTrue(tests.size() >= 10, "expected the HF float32 trace of every fixture, found " + tests.size());
        return tests;
    }

    /**
     * OLMo 2 keeps RoPE's cos/sin in fp32 (Family.ropeInFp32), so HF rotates q and k in fp32 and rounds once. lowp does
     * so (and lowp:bf16 reproduces HF's bf16 olmo2 trace bit for bit, docs/cuda.md); torch:fp16 forced by lowp:fp16 must
     * then give the same q and k. With cos/sin cast to fp16 first it did not (log-L2 −3.5 at every q and k).
     */
    @Test
    void olmo2RotatesInFp32() {
        Model m = Model.open(Fixtures.model("olmo2"));
        Trace hf = TraceFiles.read(Fixtures.trace("olmo2", "hf-bfloat16.safetensors"));
        ForwardInput free = new ForwardInput(hf.tokens(), 0);
        Trace lowp = new modeldiff.forward.lowp.LowpPass(Precision.FP16, Fixes.NONE).run(m, free, ProbeLevel.ALL);
        Trace torch = new TorchPass(Precision.FP16, Fixes.NONE).run(m, ForwardInput.forcedBy(lowp), ProbeLevel.ALL);
        for (String probe : lowp.probeNames()) {
            if (!probe.endsWith(".q") && !probe.endsWith(".k")) continue;
            double[] a = lowp.probe(probe).data(), b = torch.probe(probe).data();
            int same = 0;
            for (int i = 0; i < a.length; i++) if (a[i] == b[i]) same++;
            assertTrue(same >= 0.99 * a.length, probe + ": " + same + " of " + a.length + " identical");
        }
    }

    /**
     * A layers-only teacher forces the residual stream and nothing inside the layers: layer i is computed from the
     * teacher's layers.{i-1}. The independent truth is the float64 reference forced by the same teacher (which
     * TeacherForcingTest checks against the reference run one layer at a time). The teacher is HF's float64 run scaled
     * by 1.01, unlike anything the model computes, so a free run would be far from it.
     */
    @Test
    void layersOnlyTeacherForcesTheResidualStream() {
        Model m = Model.open(Fixtures.model("llama"));
        Trace hf = TraceFiles.read(Fixtures.trace("llama", "hf-float64.safetensors"));
        Trace teacher = Fixtures.layersTeacher(m, hf, 1.01);
        ForwardInput in = ForwardInput.forcedBy(teacher);
        Trace torch = new TorchPass(Precision.FP32, Fixes.NONE).run(m, in, ProbeLevel.LAYERS);
        Trace ref = new ReferencePass().run(m, in, ProbeLevel.LAYERS);
        Trace free = new TorchPass(Precision.FP32, Fixes.NONE).run(m, in.free(), ProbeLevel.LAYERS);
        for (int i = 1; i < m.config.numLayers; i++) {
            String probe = "layers." + i;
            double forcedErr = Metrics.logL2(ref.probe(probe).data(), torch.probe(probe).data());
            double freeErr = Metrics.logL2(ref.probe(probe).data(), free.probe(probe).data());
            assertTrue(forcedErr <= FP32_NOISE, probe + ": forced torch vs forced reference " + forcedErr);
            assertTrue(freeErr > -3, probe + ": the free run should not follow the scaled teacher (" + freeErr + ")");
        }
    }

    /**
     * A bug that acts only in the norms (HF's float32 Gemma run with the (1 + w) offset dropped: the planted
     * norm.no_unit_offset trace) shows only at the norm probes of a forced faithful run; every other probe is one fp32
     * op from the teacher's input, within fp32 noise.
     */
    @Test
    void aNormBugShowsOnlyAtTheNorms() {
        Trace planted = TraceFiles.read(Fixtures.trace("gemma", "planted-norm.no_unit_offset-float32.safetensors"));
        Trace forced = new TorchPass(Precision.FP32, Fixes.NONE)
                .run(Model.open(Fixtures.model("gemma")), ForwardInput.forcedBy(planted), ProbeLevel.ALL);
        Set<String> norms = Set.of("attn_norm", "mlp_norm", "final_norm");
        int normsFlagged = 0;
        for (String probe : planted.probeNames()) {
            double e = Metrics.logL2(planted.probe(probe).data(), forced.probe(probe).data());
            String op = probe.substring(probe.lastIndexOf('.') + 1);
            if (norms.contains(op)) {
                assertTrue(e > -2, probe + ": the norm bug should show here, log-L2 " + e);
                normsFlagged++;
            } else {
                assertTrue(e <= FP32_NOISE, probe + ": no bug acts here, yet log-L2 " + e);
            }
        }
        assertTrue(normsFlagged >= 3, "the planted trace should have norm probes");
    }
}
