package modeldiff.compare;

import modeldiff.model.BadInputException;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ComparisonTest {
    private static final NoiseFloor TABLE = TableNoiseFloor.provisionalDefault();
    private final Trace ref = SyntheticTraces.reference(4, 11);

    private Comparison compare(Trace cand) {
        return Comparison.run(new Comparison.Side("ref.safetensors", ref), List.of(new Comparison.Side("cand.safetensors", cand)), TABLE, null);
    }

    @Test
    void plantedDeviationFromLayerTwoIsNamed() {
        // 1e-2 relative error from layer 2's first step on: log-L2 = −2, 3.5 decades above float32's −5.5.
        Trace cand = SyntheticTraces.perturbed(ref, "float32", "layers.2.attn_norm", 1e-2, 5);
        Comparison.CandidateResult c = compare(cand).candidates().get(0);
        assertTrue(c.excess());
        Comparison.ProbeResult first = c.firstDivergence().probe();
        assertEquals("layers.2.attn_norm", first.name());
        assertEquals(-2.0, first.metrics().logL2(), 1e-9);
        assertEquals(3.5, first.excessDecades(), 1e-9);
        assertEquals("diverges first at layer 2, sub-layer attn_norm: excess error 3.5 decades above what float32 costs", c.verdict());
        for (Comparison.ProbeResult p : c.probes()) {
            boolean planted = ProbeId.parse(p.name()).axis(4) >= 2;
            assertEquals(planted ? Comparison.Status.EXCESS : Comparison.Status.EXPECTED, p.status(), p.name());
            assertNull(p.localLogL2(), "no local-error source: no value");
        }
    }

    @Test
    void deviationInsideALayerNamesTheSubLayer() {
        Trace cand = SyntheticTraces.perturbed(ref, "float32", "layers.2.mlp_act", 1e-2, 5);
        assertEquals("diverges first at layer 2, sub-layer mlp_act: excess error 3.5 decades above what float32 costs", compare(cand).verdict());
    }

    @Test
    void layerOutputAloneExceedingNamesTheLayer() {
        // Only the residual sum of layer 1 is off (as when the residual add is wrong): no step to blame.
        Trace cand = SyntheticTraces.edited(ref, "float32", (name, d) -> {
            if (name.equals("layers.1")) SyntheticTraces.addRelativeNoise(d, 1e-3, new java.util.Random(3));
            return d;
        });
        Comparison.CandidateResult c = compare(cand).candidates().get(0);
        assertEquals("layers.1", c.firstDivergence().probe().name());
        assertTrue(c.verdict().startsWith("diverges first at layer 1: excess error 2.5 decades"), c.verdict());
    }

    @Test
    void tinyNoiseIsExpectedUnderFloat32() {
        Trace cand = SyntheticTraces.perturbed(ref, "float32", "embed", 1e-7, 5);
        Comparison.CandidateResult c = compare(cand).candidates().get(0);
        assertFalse(c.excess());
        assertTrue(c.probes().stream().allMatch(p -> p.status() == Comparison.Status.EXPECTED));
        assertEquals(ref.probeNames().size(), c.probes().size());
        assertEquals("no excess error: every probe within the float32 noise floor", c.verdict());
    }

    @Test
    void floorFollowsTheCoarserSide() {
        // 1e-2 is excess for float32 but within bfloat16's −1.6.
        assertFalse(compare(SyntheticTraces.perturbed(ref, "bfloat16", "embed", 1e-2, 5)).anyExcess());
        // A float32 reference against a float64 candidate is judged at float32: 1e-7 is fine there, not at float64.
        Trace ref32 = SyntheticTraces.edited(ref, "float32", (n, d) -> d);
        Trace cand64 = SyntheticTraces.perturbed(ref, "float64", "embed", 1e-7, 5);
        Comparison cmp = Comparison.run(new Comparison.Side("r", ref32), List.of(new Comparison.Side("c", cand64)), TABLE, null);
        assertEquals(Precision.FP32, cmp.candidates().get(0).precision());
        assertFalse(cmp.anyExcess());
        assertTrue(compare(cand64).anyExcess(), "against the float64 reference the same noise is excess");
    }

    @Test
    void nanIsAlwaysExcess() {
        Trace cand = SyntheticTraces.edited(ref, "bfloat16", (name, d) -> {
            if (name.equals("layers.1.attn")) d[3] = Double.NaN;
            return d;
        });
        // A floor so loose that any finite error passes: the NaN must still fail.
        NoiseFloor loose = new TableNoiseFloor(java.util.Map.of(Precision.BF16, 100.0), "loose", false);
        Comparison cmp = Comparison.run(new Comparison.Side("r", ref), List.of(new Comparison.Side("c", cand)), loose, null);
        Comparison.CandidateResult c = cmp.candidates().get(0);
        Comparison.ProbeResult p = c.probe("layers.1.attn");
        assertTrue(p.failure());
        assertEquals(Comparison.Status.EXCESS, p.status());
        assertEquals("diverges first at layer 1, sub-layer attn: 1 non-finite value (NaN/Inf) in the candidate", c.verdict());
    }

    @Test
    void nonZeroWhereReferenceIsZeroIsAFailure() {
        Trace zero = SyntheticTraces.edited(ref, "float64", (name, d) -> name.equals("layers.0.v") ? new double[d.length] : d);
        Trace cand = SyntheticTraces.edited(ref, "float64", (name, d) -> d);
        Comparison cmp = Comparison.run(new Comparison.Side("r", zero), List.of(new Comparison.Side("c", cand)), TABLE, null);
        Comparison.ProbeResult p = cmp.candidates().get(0).probe("layers.0.v");
        assertEquals(Double.POSITIVE_INFINITY, p.metrics().logL2());
        assertTrue(p.failure());
        assertTrue(cmp.verdict().contains("reference is exactly zero"), cmp.verdict());
    }

    @Test
    void differentTokensOrOffsetAreRefusedNamingBothFiles() {
        Trace otherTokens = new Trace("x", "float64", "cpu", new int[]{1, 2, 3, 4, 5}, 0);
        otherTokens.put("embed", 8, ref.probe("embed").data());
        String msg = assertThrows(BadInputException.class, () -> compare(otherTokens)).getMessage();
        assertTrue(msg.contains("ref.safetensors") && msg.contains("cand.safetensors") && msg.contains("tokens"), msg);

        Trace otherOffset = new Trace("x", "float64", "cpu", SyntheticTraces.TOKENS, 3000);
        otherOffset.put("embed", 8, ref.probe("embed").data());
        msg = assertThrows(BadInputException.class, () -> compare(otherOffset)).getMessage();
        assertTrue(msg.contains("ref.safetensors") && msg.contains("cand.safetensors") && msg.contains("3000"), msg);
    }

    @Test
    void probesMissingOnEitherSideAreListedAndSkipped() {
        Trace cand = SyntheticTraces.edited(ref, "float64", (name, d) -> name.equals("layers.3") || name.startsWith("layers.3.") ? null : d);
        cand.put("extra_probe", 2, new double[SyntheticTraces.TOKENS.length * 2]);
        Comparison.CandidateResult c = compare(cand).candidates().get(0);
        assertEquals(ProbeLevelNames.sub(3), c.missingInCandidate());
        assertEquals(List.of("extra_probe"), c.missingInReference());
        assertEquals(ref.probeNames().size() - 10, c.probes().size());
        // Reference order is kept.
        List<String> order = c.probes().stream().map(Comparison.ProbeResult::name).toList();
        assertEquals(ref.probeNames().stream().filter(order::contains).toList(), order);
        assertFalse(c.excess());
    }

    @Test
    void widthMismatchAndUnknownDtypeAreBadInput() {
        Trace narrow = SyntheticTraces.edited(ref, "float64", (name, d) -> d);
        Trace wrong = new Trace("x", "float64", "cpu", SyntheticTraces.TOKENS, 0);
        wrong.put("embed", 4, new double[SyntheticTraces.TOKENS.length * 4]);
        assertTrue(assertThrows(BadInputException.class, () -> compare(wrong)).getMessage().contains("'embed' is 8 wide"));
        Trace odd = new Trace("x", "int8", "cpu", SyntheticTraces.TOKENS, 0);
        assertTrue(assertThrows(BadInputException.class, () -> compare(odd)).getMessage().startsWith("cand.safetensors: dtype"));
        assertFalse(compare(narrow).anyExcess());
    }

    @Test
    void anotherNoiseFloorAndALocalErrorSourcePlugIn() {
        // A per-probe floor (as a measured one would be) and a replay source that knows one probe.
        NoiseFloor perProbe = new NoiseFloor() {
            @Override
            public double upperBound(Precision precision, String probe) {
                return probe.equals("layers.1.q") ? -2.5 : -1.0;
            }

            @Override
            public String describe() {
                return "test floor";
            }

            @Override
            public boolean provisional() {
                return false;
            }
        };
        LocalError local = new LocalError() {
            @Override
            public Double localLogL2(String candidateLabel, String probe) {
                return probe.equals("layers.1.q") ? -2.25 : null;
            }

            @Override
            public String describe() {
                return "test replay";
            }
        };
        Trace cand = SyntheticTraces.perturbed(ref, "float32", "layers.1.q", 1e-2, 5);
        Comparison cmp = Comparison.run(new Comparison.Side("r", ref), List.of(new Comparison.Side("c", cand)), perProbe, local);
        Comparison.CandidateResult c = cmp.candidates().get(0);
        assertEquals("layers.1.q", c.firstDivergence().probe().name());
        assertEquals(0.5, c.firstDivergence().probe().excessDecades(), 1e-9);
        assertEquals(-2.25, c.probe("layers.1.q").localLogL2());
        assertNull(c.probe("layers.1.k").localLogL2());
        assertEquals(1, c.probes().stream().filter(p -> p.status() == Comparison.Status.EXCESS).count());
    }

    @Test
    void severalCandidatesGetOneSentenceEach() {
        Trace good = SyntheticTraces.perturbed(ref, "float32", "embed", 1e-7, 5);
        Trace bad = SyntheticTraces.perturbed(ref, "float32", "layers.3.q", 1e-2, 5);
        Comparison cmp = Comparison.run(new Comparison.Side("ref", ref),
                List.of(new Comparison.Side("good", good), new Comparison.Side("bad", bad)), TABLE, null);
        assertEquals("good: no excess error: every probe within the float32 noise floor; "
                + "bad: diverges first at layer 3, sub-layer q: excess error 3.5 decades above what float32 costs", cmp.verdict());
        assertEquals(4, cmp.numLayers());
    }

    @Test
    void probeNamesFromUntrustedTracesNeverThrow() {
        assertEquals(ProbeId.Kind.OTHER, ProbeId.parse("layers.x").kind());
        assertEquals(ProbeId.Kind.OTHER, ProbeId.parse("layers.99999999999.q").kind());
        assertEquals(ProbeId.Kind.OTHER, ProbeId.parse("layers.").kind());
        assertEquals(ProbeId.Kind.OTHER, ProbeId.parse("layers.3.").kind());
        assertEquals(new ProbeId("layers.12.mlp_act", ProbeId.Kind.SUB_LAYER, 12, "mlp_act"), ProbeId.parse("layers.12.mlp_act"));
        assertEquals(5, ProbeId.parse("final_norm").axis(5));
        assertEquals(6, ProbeId.parse("logits").axis(5));
        assertEquals(-1, ProbeId.parse("embed").axis(5));
    }

    /** The nine sub-layer names of one layer, spelled out independently of ProbeLevel. */
    private static final class ProbeLevelNames {
        static List<String> sub(int layer) {
            return java.util.stream.Stream.of("attn_norm", "q", "k", "v", "attn", "attn_out", "mlp_norm", "mlp_act", "mlp_out", "")
                    .map(s -> s.isEmpty() ? "layers." + layer : "layers." + layer + "." + s).toList();
        }
    }
}
