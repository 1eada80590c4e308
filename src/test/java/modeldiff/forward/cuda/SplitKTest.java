package modeldiff.forward.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The split-K planner, host side (the kernels are checked on the GPU by KernelChecks.splitKChecks). */
class SplitKTest {
    static final int H100_SMS = 132;

    /** The k/v projections at 2048 tokens: 16 × 4 = 64 tiles of 128×256 fill half of 132 SMs, so two K slices of 32 tiles. */
    @Test
    void kvProjectionAt2048TokensSplitsInTwo() {
        SplitK.Plan p = SplitK.AUTO.plan(2048, 1024, 4096, H100_SMS);
        assertEquals(2, p.splits());
        assertEquals(32, p.ktPer());   // 4096 / 64 = 64 K tiles
    }

    /** Shapes whose tiles already fill a wave are not split: 4096³ (512 tiles), q/o, gate/up, down, the LM head. */
    @Test
    void fullGridsAreNotSplit() {
        int[][] shapes = {{4096, 4096, 4096}, {2048, 4096, 4096}, {2048, 14336, 4096}, {2048, 4096, 14336}, {2048, 128256, 4096}};
        for (int[] s : shapes) assertEquals(1, SplitK.AUTO.plan(s[0], s[1], s[2], H100_SMS).splits(), s[0] + "x" + s[1] + "x" + s[2]);
    }

    /** Short K is never cut below 4 tiles per slice; at most 8 slices. */
    @Test
    void slicesKeepAMinimumLengthAndCount() {
        assertEquals(1, SplitK.AUTO.plan(128, 256, 448, H100_SMS).splits());       // 7 K tiles: one slice of ≥ 4 only
        assertEquals(2, SplitK.AUTO.plan(128, 256, 512, H100_SMS).splits());       // 8 K tiles: two of 4
        assertEquals(8, SplitK.AUTO.plan(128, 256, 65536, H100_SMS).splits());     // one tile, 132 SMs: capped at 8
        assertEquals(1, SplitK.OFF.plan(2048, 1024, 4096, H100_SMS).splits());
    }

    /** Every plan covers the K tiles exactly once with non-empty slices: (s − 1)·ktPer < kt ≤ s·ktPer. */
    @Test
    void slicesCoverKExactly() {
        for (int kt = 1; kt <= 300; kt++)
            for (int s = 1; s <= 12; s++) {
                SplitK.Plan p = SplitK.slices(s, kt);
                if (p.splits() == 1) continue;
                assertTrue(p.splits() <= s, kt + "/" + s);
                assertTrue((long) (p.splits() - 1) * p.ktPer() < kt && kt <= (long) p.splits() * p.ktPer(), kt + "/" + s + " " + p);
            }
        SplitK.Plan fixed = new SplitK(SplitK.Mode.FIXED, 4).plan(7, 13, 296, H100_SMS);   // 5 tiles: 3 slices of 2
        assertEquals(3, fixed.splits());
        assertEquals(2, fixed.ktPer());
    }

    @Test
    void propertyValues() {
        assertEquals(SplitK.AUTO, SplitK.parse("auto"));
        assertEquals(SplitK.OFF, SplitK.parse(" OFF "));
        assertEquals(SplitK.OFF, SplitK.parse("1"));
        assertEquals(new SplitK(SplitK.Mode.FIXED, 3), SplitK.parse("3"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SplitK.parse("many"));
        assertTrue(e.getMessage().contains("'many'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> SplitK.parse("0"));
    }
}
