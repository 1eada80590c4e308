package modeldiff.compare;

import modeldiff.forward.ProbeLevel;
import modeldiff.trace.Trace;

import java.util.List;
import java.util.Random;
import java.util.function.BiFunction;

/** Made-up traces with the real probe layout, and copies of them with deviations planted at known places. */
public final class SyntheticTraces {
    public static final int[] TOKENS = {1, 7, 3, 9, 4};

    private SyntheticTraces() {
    }

    /** Every probe of a {@code layers}-layer model at level ALL, random values, logits 12 wide, the rest 8. */
    public static Trace reference(int layers, long seed) {
        Random rnd = new Random(seed);
        Trace t = new Trace("synthetic", "float64", "cpu", TOKENS, 0);
        for (String name : ProbeLevel.ALL.names(layers)) {
            int cols = name.equals("logits") ? 12 : 8;
            double[] d = new double[TOKENS.length * cols];
            for (int i = 0; i < d.length; i++) d[i] = rnd.nextGaussian();
            t.put(name, cols, d);
        }
        return t;
    }

    /**
     * A copy in {@code dtype} where every probe from {@code firstProbe} on (trace order) gets noise of relative size
     * exactly {@code rel}: ‖c − r‖ / ‖r‖ = rel, so its log-L2 is log10(rel) up to rounding.
     */
    public static Trace perturbed(Trace ref, String dtype, String firstProbe, double rel, long seed) {
        Random rnd = new Random(seed);
        List<String> names = ref.probeNames();
        int from = names.indexOf(firstProbe);
        if (from < 0) throw new IllegalArgumentException(firstProbe);
        return edited(ref, dtype, (name, d) -> {
            if (names.indexOf(name) >= from) addRelativeNoise(d, rel, rnd);
            return d;
        });
    }

    /** Adds Gaussian noise scaled so that ‖noise‖ = rel · ‖d‖ exactly. */
    public static void addRelativeNoise(double[] d, double rel, Random rnd) {
        double[] g = new double[d.length];
        double gn = 0, dn = 0;
        for (int i = 0; i < d.length; i++) {
            g[i] = rnd.nextGaussian();
            gn += g[i] * g[i];
            dn += d[i] * d[i];
        }
        double scale = rel * Math.sqrt(dn / gn);
        for (int i = 0; i < d.length; i++) d[i] += scale * g[i];
    }

    /** A copy in {@code dtype} with each probe's data passed through {@code edit}; null drops the probe. */
    public static Trace edited(Trace ref, String dtype, BiFunction<String, double[], double[]> edit) {
        Trace t = new Trace("synthetic edited", dtype, "cpu", ref.tokens(), ref.positionOffset());
        for (Trace.Probe p : ref.probes().values()) {
            double[] d = edit.apply(p.name(), p.data().clone());
            if (d != null) t.put(p.name(), p.cols(), d);
        }
        return t;
    }
}
