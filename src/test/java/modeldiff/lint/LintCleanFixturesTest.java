package modeldiff.lint;

import modeldiff.Fixtures;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every committed fixture release is clean: no warning or error, with and without its trace's tokens. */
class LintCleanFixturesTest {
    static List<String> fixtures() {
        return Fixtures.names();
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void cleanFixtureHasNoWarningOrError(String name) {
        int[] tokens = TraceFiles.read(Fixtures.trace(name, "hf-float64.safetensors")).tokens();
        for (LintOptions o : List.of(LintOptions.defaults(), LintOptions.defaults().withTokens(tokens).withChunkBytes(256))) {
            LintReport r = Planted.lintUnchanged(Fixtures.model(name), o);
            // the gpt_oss fixtures ship swiglu_limit 0.5, which HF ignores (its clamp is 7): exactly what that rule reports
            boolean limit = name.startsWith("gpt_oss");
            List<Finding> bad = r.findings().stream().filter(f -> f.severity() != Severity.INFO)
                    .filter(f -> !(limit && f.rule().equals(Rules.SWIGLU_LIMIT))).toList();
            assertTrue(bad.isEmpty(), () -> name + ":\n" + r.toText());
            assertEquals(limit, !r.byRule(Rules.SWIGLU_LIMIT).isEmpty(), () -> name + ":\n" + r.toText());
        }
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void infoFindingsOnCleanFixturesAreTheKnownOnes(String name) {
        // Documented in docs/lint.md: small synthetic fixtures use odd sizes on purpose.
        Set<String> allowed = Set.of(Rules.VOCAB_64, Rules.SLIDING_WINDOW, Rules.ATTN_SCALE);
        Set<String> seen = Planted.lintUnchanged(Fixtures.model(name), LintOptions.defaults()).findings().stream()
                .map(Finding::rule).collect(Collectors.toSet());
        seen.removeAll(allowed);
        if (name.startsWith("gpt_oss")) seen.remove(Rules.SWIGLU_LIMIT);   // their swiglu_limit 0.5 (above)
        assertEquals(Set.of(), seen, name);
    }
}
