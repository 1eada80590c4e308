package modeldiff.hunt;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.Model;
import modeldiff.util.AtomicFiles;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The reverse use of a hunt: when the target is the original implementation, the explaining fixes say how the
 * release's config.json should read. Writes the corrected config and a line diff into an output folder — never into
 * the model folder. Fixes that are rounding choices have no config key and are listed instead.
 */
public final class ConfigCorrection {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private ConfigCorrection() {
    }

    public record Result(Path config, Path diff, List<String> notExpressible) {
    }

    public static Result write(Model model, List<String> fixes, Path outDir) {
        ObjectNode cfg = (ObjectNode) model.config.raw.deepCopy();
        List<String> missing = new ArrayList<>();
        for (String f : fixes) if (!apply(cfg, f, model)) missing.add(f);
        String before, after;
        try {
            before = JSON.writeValueAsString(model.config.raw);
            after = JSON.writeValueAsString(cfg);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        Path config = outDir.resolve("config.json"), diff = outDir.resolve("config.diff");
        AtomicFiles.writeString(config, after + "\n");
        AtomicFiles.writeString(diff, "--- " + model.config.file + " (released)\n+++ " + config + " (corrected by " + fixes + ")\n"
                + lineDiff(before.lines().toList(), after.lines().toList()));
        return new Result(config, diff, missing);
    }

    /** Applies one fix to the raw config; false when no config key expresses it. */
    static boolean apply(ObjectNode cfg, String fix, Model model) {
        int eq = fix.indexOf('=');
        String key = eq < 0 ? fix : fix.substring(0, eq);
        String value = eq < 0 ? null : fix.substring(eq + 1);
        switch (key) {
            case "rope.theta" -> {
                double v = Double.parseDouble(value);
                if (cfg.has("rope_parameters") && cfg.get("rope_parameters").isObject()) forEachRope(cfg, r -> r.put("rope_theta", v));
                else cfg.put("rope_theta", v);
                return true;
            }
            case "rope.partial" -> {
                double v = Double.parseDouble(value);
                cfg.put("partial_rotary_factor", v);
                if (cfg.has("rope_parameters") && cfg.get("rope_parameters").isObject())
                    forEachRope(cfg, r -> {
                        if (r.has("partial_rotary_factor")) r.put("partial_rotary_factor", v);
                    });
                return true;
            }
            case "rope.scaling_ignored" -> {
                cfg.remove("rope_scaling");
                if (cfg.has("rope_parameters") && cfg.get("rope_parameters").isObject())
                    forEachRope(cfg, r -> {
                        double theta = r.path("rope_theta").asDouble(10000);
                        for (Iterator<String> it = r.fieldNames(); it.hasNext(); ) {
                            String k = it.next();
                            if (!k.equals("rope_theta") && !k.equals("partial_rotary_factor")) it.remove();
                        }
                        r.put("rope_type", "default");
                        r.put("rope_theta", theta);
                    });
                return true;
            }
            case "norm.eps" -> {
                cfg.put(model.family.epsKey, Double.parseDouble(value));
                return true;
            }
            case "window" -> {
                cfg.put("sliding_window", Integer.parseInt(value));
                return true;
            }
            case "attn.scalar" -> {     // attn.scale=S (a bare multiplier) has no config key; the hunt names attn.scalar
                if (!model.family.queryPreAttnScalar) return false;
                double v = Double.parseDouble(value);
                if (v == Math.rint(v)) cfg.put("query_pre_attn_scalar", (long) v);
                else cfg.put("query_pre_attn_scalar", v);
                return true;
            }
            case "act.gelu_exact", "act.gelu_tanh" -> {
                String name = key.equals("act.gelu_exact") ? "gelu" : "gelu_pytorch_tanh";
                boolean any = false;
                for (String k : model.family.activationKeys)
                    if (cfg.has(k)) {
                        cfg.put(k, name);
                        any = true;
                    }
                if (!any) cfg.put(model.family.activationKeys.get(0), name);
                return true;
            }
            case "attn.no_softcap" -> {
                cfg.putNull("attn_logit_softcapping");
                return true;
            }
            case "logits.no_softcap" -> {
                cfg.putNull("final_logit_softcapping");
                return true;
            }
            default -> {
                return false;
            }
        }
    }

    /** rope_parameters is one block, or (Gemma 3, transformers v5) one block per layer type. */
    private static void forEachRope(ObjectNode cfg, java.util.function.Consumer<ObjectNode> f) {
        ObjectNode rp = (ObjectNode) cfg.get("rope_parameters");
        boolean nested = false;
        for (Iterator<Map.Entry<String, JsonNode>> it = rp.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getValue().isObject()) {
                f.accept((ObjectNode) e.getValue());
                nested = true;
            }
        }
        if (!nested) f.accept(rp);
    }

    /** A minimal line diff (longest common subsequence): "-" released, "+" corrected, " " unchanged context dropped. */
    static String lineDiff(List<String> a, List<String> b) {
        int[][] lcs = new int[a.size() + 1][b.size() + 1];
        for (int i = a.size() - 1; i >= 0; i--)
            for (int j = b.size() - 1; j >= 0; j--)
                lcs[i][j] = a.get(i).equals(b.get(j)) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
        StringBuilder out = new StringBuilder();
        int i = 0, j = 0;
        while (i < a.size() || j < b.size()) {
            if (i < a.size() && j < b.size() && a.get(i).equals(b.get(j))) {
                i++;
                j++;
            } else if (j < b.size() && (i == a.size() || lcs[i][j + 1] >= lcs[i + 1][j])) {
                out.append('+').append(b.get(j++)).append('\n');
            } else {
                out.append('-').append(a.get(i++)).append('\n');
            }
        }
        return out.toString();
    }
}
