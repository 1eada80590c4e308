package modeldiff.forward.cuda;

import modeldiff.forward.cuda.LayerPlacement.Range;
import modeldiff.forward.cuda.LayerPlacement.Refused;
import modeldiff.forward.cuda.LayerPlacement.Request;
import modeldiff.forward.cuda.LayerPlacement.Split;
import modeldiff.model.BadInputException;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The multi-device layer plan: pure arithmetic, checked against placements worked out by hand and by brute force. */
class LayerPlacementTest {
    private static long[] same(int n, long b) {
        long[] a = new long[n];
        Arrays.fill(a, b);
        return a;
    }

    @Test
    void fitsOneDeviceStaysOnOne() {
        Split s = (Split) LayerPlacement.plan(new Request(same(4, 10), 5, 5, false, new long[]{50, 50}));
        assertEquals(List.of(new Range(0, 0, 4)), s.ranges());
        assertEquals(50, s.loads()[0]);
    }

    @Test
    void tiedHeadCountsOnceOnOneDeviceTwiceWhenSplit() {
        // 4 × 10 + embed 10: fits 50 only because the tied head is the embedding
        assertEquals(1, ((Split) LayerPlacement.plan(new Request(same(4, 10), 10, 10, true, new long[]{50, 50}))).devices());
        Split s = (Split) LayerPlacement.plan(new Request(same(4, 10), 10, 10, true, new long[]{45, 45}));
        assertEquals(2, s.devices());
        assertEquals(60, s.loads()[0] + s.loads()[1], "the head's copy on the last device is counted");
    }

    @Test
    void seventyBShapedSplitsEvenly() {
        // Llama-3-70B in bf16: 80 layers of 1.71 GB, embedding and head 2.10 GB each, two 139 GB H200 budgets
        long layer = 2L * (2 * 8192L * 8192 + 2 * 1024L * 8192 + 3 * 28672L * 8192), embed = 2L * 128256 * 8192;
        Split s = (Split) LayerPlacement.plan(new Request(same(80, layer), embed, embed, false, new long[]{130_000_000_000L, 130_000_000_000L}));
        assertEquals(List.of(new Range(0, 0, 40), new Range(1, 40, 80)), s.ranges());
        assertEquals("0:[embed, layers 0-39] 1:[layers 40-79, head]", s.describe());
        // four 78 GB H100s: 19 to 21 layers each (the embedding and head weigh 1.2 layers), the fullest as empty as can be
        long[] h100 = same(4, 70_000_000_000L);
        Split four = (Split) LayerPlacement.plan(new Request(same(80, layer), embed, embed, false, h100));
        for (Range r : four.ranges()) assertTrue(r.count() >= 19 && r.count() <= 21, four.describe());
        assertEquals(bestRatio(same(80, layer), embed, embed, h100), maxRatio(four, h100), 1e-9);
    }

    @Test
    void unevenLayersMinimiseTheFullestDevice() {
        long[] layers = {9, 1, 1, 1, 1, 1, 1, 9, 5, 5};
        long[] budgets = {30, 30, 30};
        Split s = (Split) LayerPlacement.plan(new Request(layers, 2, 2, false, budgets));
        assertEquals(bestRatio(layers, 2, 2, budgets), maxRatio(s, budgets), 1e-9);
        assertEquals(0, s.ranges().get(0).first());
        assertEquals(layers.length, s.ranges().get(2).end());
        for (int i = 1; i < 3; i++) assertEquals(s.ranges().get(i - 1).end(), s.ranges().get(i).first(), "contiguous");
    }

    @Test
    void unequalBudgetsGetProportionalShares() {
        Split s = (Split) LayerPlacement.plan(new Request(same(12, 10), 0, 0, false, new long[]{100, 50}));
        assertEquals(8, s.ranges().get(0).count());
        assertEquals(4, s.ranges().get(1).count());
    }

    @Test
    void moeLayersAreHeavierAndGetFewerCompanions() {
        // dense layer 0 (DeepSeek-style first_k_dense), then MoE layers eight times its size
        long[] layers = {4, 32, 32, 32, 32, 32, 32};
        long[] budgets = {80, 80, 80};
        Split s = (Split) LayerPlacement.plan(new Request(layers, 6, 6, false, budgets));
        assertEquals(bestRatio(layers, 6, 6, budgets), maxRatio(s, budgets), 1e-9);
        assertTrue(s.loads()[0] <= 80 && s.loads()[1] <= 80 && s.loads()[2] <= 80);
    }

    @Test
    void aLayerLargerThanAnyDeviceIsRefusedByName() {
        Refused r = (Refused) LayerPlacement.plan(new Request(new long[]{10, 90_000_000_000L, 10}, 1, 1, false,
                new long[]{60_000_000_000L, 70_000_000_000L}));
        assertTrue(r.reason().contains("layer 1 needs 90.00 GB"), r.reason());
        assertTrue(r.reason().contains("70.00 GB"), r.reason());
    }

    @Test
    void totalOverTheSumIsRefused() {
        Refused r = (Refused) LayerPlacement.plan(new Request(same(10, 10), 5, 5, false, new long[]{40, 40}));
        assertTrue(r.reason().contains("over their budgets' sum"), r.reason());
        assertInstanceOf(Refused.class, LayerPlacement.plan(new Request(same(10, 10), 5, 5, false, new long[]{50})));
    }

    @Test
    void contiguityCanRefuseWhatTheSumAllows() {
        // 3 layers of 6 into two budgets of 10: the sum (20) covers 18 but no contiguous split does
        Refused r = (Refused) LayerPlacement.plan(new Request(same(3, 6), 0, 0, false, new long[]{10, 10}));
        assertTrue(r.reason().contains("no contiguous split"), r.reason());
    }

    @Test
    void embeddingOrHeadAloneTooLargeIsNamed() {
        assertTrue(((Refused) LayerPlacement.plan(new Request(same(2, 10), 50, 1, false, new long[]{40, 60}))).reason().contains("embedding"));
        assertTrue(((Refused) LayerPlacement.plan(new Request(same(2, 10), 1, 50, false, new long[]{60, 40}))).reason().contains("LM head"));
    }

    @Test
    void aSlotMayHoldOnlyTheHead() {
        // the embedding fills most of slot 0, the layers need slot 1, the head alone fits slot 2
        Split s = (Split) LayerPlacement.plan(new Request(same(2, 10), 25, 30, false, new long[]{30, 30, 30}));
        assertEquals(3, s.devices());
        assertEquals(0, s.ranges().get(2).count());
        assertEquals("0:[embed] 1:[layers 0-1] 2:[head]", s.describe());
        assertEquals(2, s.headDevice());
        assertEquals(1, s.deviceOf(1));
    }

    @Test
    void evenSplitsByCount() {
        assertEquals(List.of(new Range(0, 0, 4), new Range(1, 4, 8)), LayerPlacement.even(8, 2).ranges());
        assertEquals(List.of(new Range(0, 0, 3), new Range(1, 3, 5), new Range(2, 5, 7)), LayerPlacement.even(7, 3).ranges());
        assertEquals("0:[embed, layer 0] 1:[head]", LayerPlacement.even(1, 2).describe(), "one layer over two slots: the first takes it");
    }

    @Test
    void deviceLists() {
        assertNull(LayerPlacement.parseDevices(null));
        assertNull(LayerPlacement.parseDevices(" "));
        assertArrayEquals(new int[]{0, 0}, LayerPlacement.parseDevices("0,0"));
        assertArrayEquals(new int[]{0, 1, 2, 3}, LayerPlacement.parseDevices(" 0, 1,2 ,3"));
        assertThrows(BadInputException.class, () -> LayerPlacement.parseDevices("0,x"));
        assertThrows(BadInputException.class, () -> LayerPlacement.parseDevices("-1"));
        assertArrayEquals(new long[]{50, 50, 80}, LayerPlacement.shareBudgets(new int[]{0, 0, 1}, new long[]{100, 100, 80}));
    }

    @Test
    void fixtureSizesComeFromTheConfig() {
        // llama: every layer q, k, v, o, gate, up, down in bf16 plus 16·hidden bytes of norms; the head untied
        modeldiff.model.Model llama = modeldiff.model.Model.open(java.nio.file.Path.of("src/test/resources/fixtures/llama/model"));
        var c = llama.config;
        long H = c.hiddenSize, layer = 2 * (H * c.qDim() + 2 * H * c.kvDim() + c.qDim() * H + 3 * H * c.intermediateSize) + 16 * H;
        Request r = DeviceModel.request(llama, modeldiff.numeric.Precision.BF16, new long[]{1});
        for (long b : r.layerBytes()) assertEquals(layer, b);
        assertEquals(2L * c.vocabSize * H, r.embedBytes());
        assertEquals(r.embedBytes(), r.headBytes());
        assertTrue(!r.tied());
        assertTrue(DeviceModel.request(modeldiff.model.Model.open(java.nio.file.Path.of("src/test/resources/fixtures/gpt2/model")),
                modeldiff.numeric.Precision.FP32, new long[]{1}).tied());
        // DeepSeek-V3: layer 0 dense (first_k_dense_replace 1), layers 1-2 MoE with 8 experts: heavier
        Request ds = DeviceModel.request(modeldiff.model.Model.open(java.nio.file.Path.of("src/test/resources/fixtures/deepseek_v3/model")),
                modeldiff.numeric.Precision.BF16, new long[]{1});
        assertTrue(ds.layerBytes()[1] > 2 * ds.layerBytes()[0], Arrays.toString(ds.layerBytes()));
        assertEquals(ds.layerBytes()[1], ds.layerBytes()[2]);
        // one byte short of one device: two slots, contiguous, the embedding first and the head last
        Split s = (Split) LayerPlacement.plan(new Request(r.layerBytes(), r.embedBytes(), r.headBytes(), false,
                new long[]{r.singleDevice() - 1, r.singleDevice() - 1}));
        assertEquals(2, s.devices());
        assertEquals(c.numLayers, s.ranges().get(0).count() + s.ranges().get(1).count());
    }

    // ---- brute force: every way to cut the layers into contiguous ranges, the best largest load / budget

    private static double maxRatio(Split s, long[] budgets) {
        double m = 0;
        for (int j = 0; j < s.devices(); j++) m = Math.max(m, (double) s.loads()[j] / budgets[s.ranges().get(j).device()]);
        return m;
    }

    private static double bestRatio(long[] layers, long embed, long head, long[] budgets) {
        return best(layers, embed, head, budgets, 0, 0);
    }

    private static double best(long[] s, long embed, long head, long[] c, int j, int from) {
        int k = c.length;
        if (j == k - 1) {
            long load = head + (j == 0 ? embed : 0);
            for (int i = from; i < s.length; i++) load += s[i];
            return (double) load / c[j];
        }
        double b = Double.MAX_VALUE;
        for (int end = from; end <= s.length; end++) {
            long load = j == 0 ? embed : 0;
            for (int i = from; i < end; i++) load += s[i];
            b = Math.min(b, Math.max((double) load / c[j], best(s, embed, head, c, j + 1, end)));
        }
        return b;
    }
}
