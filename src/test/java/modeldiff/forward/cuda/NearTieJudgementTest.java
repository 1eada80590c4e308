package modeldiff.forward.cuda;

import modeldiff.compare.RoutingAgreement;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The self-test's judgement of a bf16 routing flip (CudaSelfTest.nearTieFlipsOnly): a model whose only flips against
 * lowp:bf16 sit at near-ties is judged teacher-forced instead of free-running; a flip that is not a near-tie, or no flip
 * at all, leaves the free-run criterion standing. Every flip is printed with its margin.
 */
class NearTieJudgementTest {
    private static RoutingAgreement agreement(RoutingAgreement.Flip... flips) {
        return new RoutingAgreement(List.of(new RoutingAgreement.Layer(0, 32, 32 - flips.length, List.of(flips))));
    }

    private static RoutingAgreement.Flip flip(double margin, double logitChange) {
        return new RoutingAgreement.Flip(7, new int[]{3, 7}, new int[]{3, 5}, margin, logitChange);
    }

    @Test
    void nearTiesOnlyAreJudgedForced() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
        assertTrue(CudaSelfTest.nearTieFlipsOnly(agreement(flip(0.001, 0.002)), "m", out));
        String text = buf.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("token 7") && text.contains("margin 0.00100") && text.contains("near-tie"), text);
    }

    @Test
    void aFlipBeyondATieOrNoFlipKeepsTheFreeRunCriterion() {
        PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertFalse(CudaSelfTest.nearTieFlipsOnly(agreement(flip(0.001, 0.002), flip(0.5, 0.01)), "m", out));
        assertFalse(CudaSelfTest.nearTieFlipsOnly(agreement(), "m", out));
    }
}
