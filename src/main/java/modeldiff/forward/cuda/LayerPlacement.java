package modeldiff.forward.cuda;

import modeldiff.model.BadInputException;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Where a model's weights go on several devices of one host (issue #18), as pure arithmetic on byte counts: contiguous
 * ranges of layers, the embedding on the first device, the final norm and LM head on the last, balanced so that the
 * fullest device (weights over its budget) is as empty as it can be. No CUDA here: the caller measures the budgets
 * (free memory less room for the workspace) and the layers' bytes; unit tests run anywhere.
 *
 * <p>When the weights fit the first device alone, the plan is that one device (today's single-GPU behaviour). When no
 * split fits, the result is a {@link Refused} with a reason naming the obstacle (a layer larger than any budget, or
 * the total over the sum), and the caller streams the layers on one device instead.
 */
public final class LayerPlacement {
    private LayerPlacement() {
    }

    /**
     * The sizes: each decoder layer's device bytes (linear weights, norms, experts), the embedding (first device),
     * the LM head (last device), whether the head is the embedding (tied: one copy when a single device holds both,
     * a second copy on the last device otherwise), and each device slot's budget in bytes.
     */
    public record Request(long[] layerBytes, long embedBytes, long headBytes, boolean tied, long[] budgets) {
        public Request {
            if (budgets.length == 0) throw new IllegalArgumentException("no devices");
            for (long b : layerBytes) if (b < 0) throw new IllegalArgumentException("negative layer size");
        }

        long layersTotal() {
            long s = 0;
            for (long b : layerBytes) s += b;
            return s;
        }

        /** Bytes of everything on one device (a tied head counted once). */
        long singleDevice() {
            return layersTotal() + embedBytes + (tied ? 0 : headBytes);
        }
    }

    /** Layers [first, end) on device slot {@code device} (end = first: no layers, only the embedding or the head). */
    public record Range(int device, int first, int end) {
        public int count() {
            return end - first;
        }
    }

    /** What {@link #plan} decides. */
    public sealed interface Result permits Split, Refused {
    }

    /**
     * One range per device slot used, in order (slot 0 first; its range starts at layer 0; the last one ends at the
     * layer count), and the bytes each slot then holds.
     */
    public record Split(List<Range> ranges, long[] loads) implements Result {
        public int devices() {
            return ranges.size();
        }

        /** The slot that runs layer i. */
        public int deviceOf(int layer) {
            for (Range r : ranges) if (layer >= r.first() && layer < r.end()) return r.device();
            throw new IllegalArgumentException("layer " + layer + " is in no range");
        }

        /** The slot holding the final norm and LM head. */
        public int headDevice() {
            return ranges.get(ranges.size() - 1).device();
        }

        /** e.g. "0:[embed, layers 0-39] 1:[layers 40-79, head]". */
        public String describe() {
            StringBuilder sb = new StringBuilder();
            for (int j = 0; j < ranges.size(); j++) {
                Range r = ranges.get(j);
                List<String> parts = new ArrayList<>();
                if (j == 0) parts.add("embed");
                if (r.count() > 0) parts.add(r.count() == 1 ? "layer " + r.first() : "layers " + r.first() + "-" + (r.end() - 1));
                if (j == ranges.size() - 1) parts.add("head");
                sb.append(j == 0 ? "" : " ").append(r.device()).append(":[").append(String.join(", ", parts)).append(']');
            }
            return sb.toString();
        }
    }

    /** No placement fits: why, in one sentence. */
    public record Refused(String reason) implements Result {
    }

    /**
     * The plan: one device when everything fits the first slot's budget or only one slot is listed; else every
     * listed slot in order, each a contiguous range, minimising the largest load / budget ratio.
     */
    public static Result plan(Request r) {
        long[] c = r.budgets();
        int L = r.layerBytes().length;
        if (r.singleDevice() <= c[0]) return new Split(List.of(new Range(0, 0, L)), new long[]{r.singleDevice()});
        if (c.length == 1)
            return new Refused(String.format(Locale.ROOT, "the weights need %s, over the device's budget of %s", gb(r.singleDevice()), gb(c[0])));
        String obstacle = obstacle(r);
        if (obstacle != null) return new Refused(obstacle);
        if (fill(r, 1) == null)
            return new Refused(String.format(Locale.ROOT, "no contiguous split of the layers over the %d devices fits their budgets "
                    + "(the weights need %s of their %s)", c.length, gb(r.layersTotal() + r.embedBytes() + r.headBytes()), gb(sum(c))));
        // the smallest ratio at which the greedy fill places every layer (greedy is optimal for contiguous ranges)
        double lo = 0, hi = 1;
        for (int it = 0; it < 60; it++) {
            double mid = (lo + hi) / 2;
            if (fill(r, mid) != null) hi = mid;
            else lo = mid;
        }
        return balance(r, hi);
    }

    /** Why no split can fit, when that is visible from single sizes or the sum; null when it may fit. */
    private static String obstacle(Request r) {
        long[] c = r.budgets();
        long max = 0, sum = 0;
        for (long b : c) {
            max = Math.max(max, b);
            sum += b;
        }
        long[] s = r.layerBytes();
        for (int i = 0; i < s.length; i++)
            if (s[i] > max)
                return String.format(Locale.ROOT, "layer %d needs %s, more than any device's budget (the largest: %s)", i, gb(s[i]), gb(max));
        if (r.embedBytes() > c[0])
            return String.format(Locale.ROOT, "the embedding needs %s, over the first device's budget of %s", gb(r.embedBytes()), gb(c[0]));
        if (r.headBytes() > c[c.length - 1])
            return String.format(Locale.ROOT, "the LM head needs %s, over the last device's budget of %s", gb(r.headBytes()), gb(c[c.length - 1]));
        long need = r.layersTotal() + r.embedBytes() + r.headBytes();
        if (need > sum)
            return String.format(Locale.ROOT, "the weights need %s spread over %d devices (the head a copy of the embedding when tied), "
                    + "over their budgets' sum of %s", gb(need), c.length, gb(sum));
        return null;
    }

    /**
     * Greedy fill at ratio {@code ratio}: each slot takes layers while its load stays within ratio × budget (slot 0
     * starts with the embedding, the last slot with the head); null when some layer is left over.
     */
    static Split fill(Request r, double ratio) {
        long[] c = r.budgets(), s = r.layerBytes();
        int k = c.length, L = s.length;
        long[] load = new long[k];
        load[0] += r.embedBytes();
        load[k - 1] += r.headBytes();
        for (int j = 0; j < k; j++) if (load[j] > ratio * c[j]) return null;
        List<Range> ranges = new ArrayList<>();
        int i = 0;
        for (int j = 0; j < k; j++) {
            int first = i;
            while (i < L && load[j] + s[i] <= ratio * c[j]) load[j] += s[i++];
            ranges.add(new Range(j, first, i));
        }
        return i == L ? new Split(List.copyOf(ranges), load) : null;
    }

    /**
     * At a ratio where {@link #fill} succeeds, the same bound, but each slot (but the last) takes the number of layers
     * that brings its load nearest its share of what is left (share ∝ budget) among those that keep the rest placeable:
     * the greedy fill alone packs the first slots to the bound and leaves the last ones light.
     */
    static Split balance(Request r, double ratio) {
        long[] c = r.budgets(), s = r.layerBytes();
        int k = c.length, L = s.length;
        long[] load = new long[k];
        load[0] += r.embedBytes();
        load[k - 1] += r.headBytes();
        List<Range> ranges = new ArrayList<>();
        int i = 0;
        for (int j = 0; j < k - 1; j++) {
            long rest = r.headBytes() + load[j];
            for (int x = i; x < L; x++) rest += s[x];
            double budgetLeft = 0;
            for (int x = j; x < k; x++) budgetLeft += c[x];
            double target = rest * (c[j] / budgetLeft);
            int bestN = -1;
            double bestDiff = Double.MAX_VALUE;
            long acc = load[j];
            for (int n = 0; i + n <= L; n++) {
                if (n > 0) acc += s[i + n - 1];
                if (acc > ratio * c[j]) break;
                if (!suffixFits(r, ratio, i + n, j + 1)) continue;
                double diff = Math.abs(acc - target);
                if (diff < bestDiff) {
                    bestDiff = diff;
                    bestN = n;
                }
            }
            if (bestN < 0) return fill(r, ratio);   // cannot happen where fill succeeds; the greedy answer then
            for (int n = 0; n < bestN; n++) load[j] += s[i + n];
            ranges.add(new Range(j, i, i + bestN));
            i += bestN;
        }
        for (int x = i; x < L; x++) load[k - 1] += s[x];
        ranges.add(new Range(k - 1, i, L));
        return new Split(List.copyOf(ranges), load);
    }

    /** Whether layers [from, L) fit slots [slot, k) at this ratio (greedy; the head on the last slot). */
    private static boolean suffixFits(Request r, double ratio, int from, int slot) {
        long[] c = r.budgets(), s = r.layerBytes();
        int k = c.length, i = from;
        for (int j = slot; j < k; j++) {
            long load = j == k - 1 ? r.headBytes() : 0;
            if (load > ratio * c[j]) return false;
            while (i < s.length && load + s[i] <= ratio * c[j]) load += s[i++];
        }
        return i == s.length;
    }

    /**
     * {@code layers} layers in contiguous ranges of near-equal counts over {@code slots} slots (the first ones one
     * layer more when it does not divide), whatever the sizes: a benchmark's forced split of a model that would fit
     * one device (the [0,0] measurement on a one-GPU host).
     */
    public static Split even(int layers, int slots) {
        if (slots < 1 || layers < 0) throw new IllegalArgumentException(layers + " layers over " + slots + " slots");
        List<Range> ranges = new ArrayList<>();
        int first = 0;
        for (int j = 0; j < slots; j++) {
            int n = layers / slots + (j < layers % slots ? 1 : 0);
            ranges.add(new Range(j, first, first + n));
            first += n;
        }
        return new Split(List.copyOf(ranges), new long[slots]);
    }

    /**
     * The device list of {@code -Dmodeldiff.cuda.devices} (or the CLI's --devices): comma-separated CUDA ordinals,
     * repeats allowed ("0,0": two contexts on device 0, the one-GPU proof of the split path). Null or blank: null
     * (one device, today's behaviour).
     */
    public static int[] parseDevices(String s) {
        if (s == null || s.isBlank()) return null;
        String[] parts = s.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].trim();
            try {
                out[i] = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new BadInputException("cuda devices: '" + s + "' is not a comma-separated list of device numbers ('" + p + "')");
            }
            if (out[i] < 0 || out[i] > 63) throw new BadInputException("cuda devices: device number " + out[i] + " is out of range");
        }
        return out;
    }

    /**
     * The budget of each slot of a device list: a device listed n times has its budget split n ways (the slots
     * share its memory).
     */
    public static long[] shareBudgets(int[] devices, long[] perDevice) {
        long[] out = new long[devices.length];
        for (int i = 0; i < devices.length; i++) {
            int n = 0;
            for (int d : devices) if (d == devices[i]) n++;
            out[i] = perDevice[i] / n;
        }
        return out;
    }

    private static long sum(long[] a) {
        long s = 0;
        for (long x : a) s += x;
        return s;
    }

    static String gb(long bytes) {
        return String.format(Locale.ROOT, "%.2f GB", bytes / 1e9);
    }
}
