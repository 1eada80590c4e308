package modeldiff.compare;

import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.Model;
import modeldiff.trace.Trace;

import java.util.HashMap;
import java.util.Map;

/**
 * Local error by replay: layer i of the candidate is run on the reference's residual stream entering layer i, and
 * its probes are compared with the reference's. A layer that makes error shows it here; a layer that only carries
 * error from earlier layers shows a small local error even when its accumulated error is large.
 */
public final class ReplayLocalError implements LocalError {
    private final Model model;
    private final ForwardInput input;
    private final Trace reference;
    private final Map<String, ForwardPass> passes;
    private final Map<String, Map<String, Double>> cache = new HashMap<>();

    /** @param passes candidate label → the pass that produced it (only passes that {@link ForwardPass#canReplay}). */
    public ReplayLocalError(Model model, ForwardInput input, Trace reference, Map<String, ForwardPass> passes) {
        this.model = model;
        this.input = input;
        this.reference = reference;
        this.passes = passes;
    }

    @Override
    public synchronized Double localLogL2(String candidateLabel, String probe) {
        ForwardPass pass = passes.get(candidateLabel);
        if (pass == null || !pass.canReplay()) return null;
        return cache.computeIfAbsent(candidateLabel, k -> replayAll(pass)).get(probe);
    }

    private Map<String, Double> replayAll(ForwardPass pass) {
        Map<String, Double> out = new HashMap<>();
        int layers = model.config.numLayers;
        ProbeLevel level = reference.has("layers.0.q") ? ProbeLevel.ALL : ProbeLevel.LAYERS;
        for (int i = 0; i <= layers; i++) {
            String inputProbe = i == 0 ? "embed" : "layers." + (i - 1);
            Trace.Probe in = reference.probe(inputProbe);
            if (in == null) continue;
            // i == layers replays only the final norm and the LM head, from the reference's last layer output.
            Trace replayed = pass.runLayers(model, input, level, i, Math.min(i + 1, layers), in.data());
            for (String name : replayed.probeNames()) {
                boolean finalProbe = name.equals("final_norm") || name.equals("logits");
                if (finalProbe != (i == layers)) continue;
                Trace.Probe r = reference.probe(name);
                if (r != null) out.put(name, Metrics.logL2(r.data(), replayed.probe(name).data()));
            }
        }
        return out;
    }

    @Override
    public String describe() {
        return "each layer of the candidate replayed on the reference's input to that layer";
    }
}
