package modeldiff.numeric;

import org.apache.commons.math3.analysis.UnivariateFunction;
import org.apache.commons.math3.analysis.integration.IterativeLegendreGaussIntegrator;

import java.util.Locale;

/**
 * How far apart two scalar functions of the catalog are: the numbers behind "exact vs tanh GELU" arguments.
 * max |Δ| and where it peaks, ∫|Δ| (Gauss–Legendre on the range, which is the real-line integral when Δ has
 * vanished at both ends), and max |Δ'| by central differences.
 */
public final class OpsComparison {
    private OpsComparison() {
    }

    public record Result(String f, String g, double lo, double hi, double maxAbsDiff, double argMax, double integralAbsDiff,
                         boolean tailsVanish, double maxAbsDerivDiff, double argMaxDeriv) {
    }

    public static Activation parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "gelu_exact", "gelu" -> Activation.GELU_EXACT;
            case "gelu_tanh", "gelu_new", "gelu_pytorch_tanh" -> Activation.GELU_TANH;
            case "silu", "swish" -> Activation.SILU;
            case "relu2" -> Activation.RELU2;
            case "relu" -> Activation.RELU;
            default -> throw new IllegalArgumentException("unknown function '" + name + "'; known: gelu_exact, gelu_tanh, silu, relu2, relu");
        };
    }

    public static Result compare(Activation f, Activation g, double lo, double hi) {
        if (!(hi > lo)) throw new IllegalArgumentException("--range must be a,b with a < b");
        UnivariateFunction diff = x -> Math.abs(f.apply(x) - g.apply(x));
        int n = 200_000;
        double max = 0, arg = lo, maxD = 0, argD = lo, h = 1e-5;
        for (int i = 0; i <= n; i++) {
            double x = lo + (hi - lo) * i / n;
            double d = diff.value(x);
            if (d > max) {
                max = d;
                arg = x;
            }
            double dd = Math.abs((f.apply(x + h) - f.apply(x - h)) - (g.apply(x + h) - g.apply(x - h))) / (2 * h);
            if (dd > maxD) {
                maxD = dd;
                argD = x;
            }
        }
        // Integrate piecewise so the quadrature sees the kinks (relu at 0).
        IterativeLegendreGaussIntegrator integrator = new IterativeLegendreGaussIntegrator(16, 1e-12, 1e-14);
        double integral = 0;
        int pieces = 64;
        for (int i = 0; i < pieces; i++) {
            double a = lo + (hi - lo) * i / pieces, b = lo + (hi - lo) * (i + 1) / pieces;
            integral += integrator.integrate(10_000_000, diff, a, b);
        }
        boolean tails = diff.value(lo) < 1e-12 && diff.value(hi) < 1e-12;
        return new Result(f.id(), g.id(), lo, hi, max, arg, integral, tails, maxD, argD);
    }
}
