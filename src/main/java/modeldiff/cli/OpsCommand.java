package modeldiff.cli;

import modeldiff.model.BadInputException;
import modeldiff.numeric.Activation;
import modeldiff.numeric.OpsComparison;
import modeldiff.util.AtomicFiles;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "ops", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Compare two scalar functions of the catalog (gelu_exact, gelu_tanh, silu, relu2, relu).")
final class OpsCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "F", description = "The first function: gelu_exact, gelu_tanh, silu, relu2 or relu.")
    String f;

    @Option(names = "--vs", required = true, paramLabel = "G", description = "The function to compare it with (same names as F).")
    String g;

    @Option(names = "--range", defaultValue = "-10,10", paramLabel = "a,b", description = "Interval (default: ${DEFAULT-VALUE}).")
    String range;

    @Option(names = "--png", paramLabel = "FILE", description = "Plot both curves and their difference.")
    Path png;

    @Option(names = "--force", description = "Replace an existing output.")
    boolean force;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Override
    public Integer call() {
        Activation a = function(f), b = function(g);
        String[] r = range.split(",");
        double lo, hi;
        try {
            lo = Double.parseDouble(r[0].trim());
            hi = Double.parseDouble(r[1].trim());
        } catch (RuntimeException e) {
            throw new BadInputException("--range must be two numbers a,b; got '" + range + "'");
        }
        if (png != null) Common.checkOutput(png, null, force);
        if (!(hi > lo)) throw new BadInputException("--range must be a,b with a < b; got '" + range + "'");
        OpsComparison.Result res = OpsComparison.compare(a, b, lo, hi);
        System.out.printf("%s vs %s on [%g, %g]%n", f, g, lo, hi);
        System.out.printf("  max |f-g|    %.6e at x = %.4f%n", res.maxAbsDiff(), res.argMax());
        System.out.printf("  integral |f-g| %.6e%s%n", res.integralAbsDiff(),
                res.tailsVanish() ? " (the difference vanishes at both ends: this is the real-line integral)" : " (over the range only: the difference has not vanished at its ends)");
        System.out.printf("  max |f'-g'|  %.6e at x = %.4f%n", res.maxAbsDerivDiff(), res.argMaxDeriv());
        if (png != null) {
            XYSeries sf = new XYSeries(f), sg = new XYSeries(g), sd = new XYSeries(f + " - " + g);
            for (int i = 0; i <= 800; i++) {
                double x = lo + (hi - lo) * i / 800;
                sf.add(x, a.apply(x));
                sg.add(x, b.apply(x));
                sd.add(x, a.apply(x) - b.apply(x));
            }
            XYSeriesCollection curves = new XYSeriesCollection();
            curves.addSeries(sf);
            curves.addSeries(sg);
            JFreeChart chart = ChartFactory.createXYLineChart(f + " vs " + g, "x", "value", curves, PlotOrientation.VERTICAL, true, false, false);
            XYPlot plot = chart.getXYPlot();
            NumberAxis diffAxis = new NumberAxis("difference");
            plot.setRangeAxis(1, diffAxis);
            plot.setDataset(1, new XYSeriesCollection(sd));
            plot.mapDatasetToRangeAxis(1, 1);
            XYLineAndShapeRenderer dr = new XYLineAndShapeRenderer(true, false);
            plot.setRenderer(1, dr);
            System.setProperty("java.awt.headless", "true");
            AtomicFiles.write(png, out -> ChartUtils.writeChartAsPNG(out, chart, 900, 500));
            System.out.println("wrote " + png);
        }
        return 0;
    }

    private static Activation function(String name) {
        try {
            return OpsComparison.parse(name);
        } catch (IllegalArgumentException e) {
            throw new BadInputException(e.getMessage());
        }
    }
}
