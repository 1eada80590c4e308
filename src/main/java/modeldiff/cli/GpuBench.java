package modeldiff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.forward.cuda.CudaRuntime;
import modeldiff.forward.cuda.CudaSelfTest;
import modeldiff.model.BadInputException;
import modeldiff.numeric.Precision;
import modeldiff.util.AtomicFiles;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code bench gpu}: modeldiff's CUDA benchmark ({@link CudaSelfTest#bench}) and, in the same call, HF transformers'
 * side ({@code reference-impls/hf_bench.py}) when python3 with torch and transformers is present, both written into
 * one JSON with the card's name and the ratios the goals are stated in.
 */
final class GpuBench {
    private GpuBench() {
    }

    /** What to run: tokens, dtypes, HF side (auto: when python has transformers; off), its script and python. */
    record Options(String shape, int tokens, List<Precision> dtypes, String hf, Path hfScript, String python, boolean streamed,
                   int hfTimeoutSeconds) {
    }

    /** "bf16,fp16" → [BF16, FP16]; anything but bf16 / fp16 is a bad input naming the value. */
    static List<Precision> parseDtypes(String s) {
        List<Precision> out = new ArrayList<>();
        for (String p : s.split(",")) {
            String t = p.trim().toLowerCase(Locale.ROOT);
            if (t.equals("bf16")) out.add(Precision.BF16);
            else if (t.equals("fp16")) out.add(Precision.FP16);
            else throw new BadInputException("bench gpu: --dtypes takes bf16 and/or fp16, got '" + p.trim() + "'");
        }
        if (out.isEmpty()) throw new BadInputException("bench gpu: --dtypes is empty");
        return List.copyOf(new java.util.LinkedHashSet<>(out));
    }

    static int run(Options o, Path json) throws IOException {
        if (!o.shape().equals("llama3-8b")) throw new BadInputException("bench gpu: --shape must be llama3-8b, got '" + o.shape() + "'");
        if (!o.hf().equals("auto") && !o.hf().equals("off"))
            throw new BadInputException("bench gpu: --hf must be auto or off, got '" + o.hf() + "'");
        CudaRuntime rt = CudaRuntime.get();
        if (rt == null) throw new BadInputException("bench gpu: CUDA unavailable: " + CudaRuntime.unavailableReason());
        Path dir = Files.createTempDirectory("modeldiff-gpubench");
        Path ours = dir.resolve("modeldiff.json"), theirs = dir.resolve("hf.json");
        CudaSelfTest.bench(rt, new CudaSelfTest.BenchOptions(o.shape(), o.tokens(), o.dtypes(), o.streamed()), ours);
        ObjectMapper om = new ObjectMapper();
        ObjectNode out = om.createObjectNode();
        out.put("card", rt.deviceName);
        out.put("tokens", o.tokens());
        JsonNode m = om.readTree(ours.toFile());
        out.set("modeldiff", m);
        String skipped = o.hf().equals("off") ? "--hf off" : hfUnavailable(o);
        JsonNode h = null;
        if (skipped == null) skipped = runHf(o, theirs);
        if (skipped == null) {
            h = om.readTree(theirs.toFile());
            out.set("hf", h);
            if (h.has("device") && !h.get("device").asText().equals(rt.deviceName))
                out.put("warning", "HF ran on " + h.get("device").asText() + ", modeldiff on " + rt.deviceName);
        } else {
            out.putObject("hf").put("skipped", skipped);
            System.out.println("HF side skipped: " + skipped);
        }
        out.set("ratios", ratios(om, m, h));
        String text = om.writerWithDefaultPrettyPrinter().writeValueAsString(out) + "\n";
        System.out.println("ratios: " + om.writerWithDefaultPrettyPrinter().writeValueAsString(out.get("ratios")));
        if (json != null) {
            AtomicFiles.writeString(json, text);
            System.out.println("wrote " + json);
        }
        return 0;
    }

    /** Why the HF side cannot run here (no script, no python, no torch/transformers), or null. */
    private static String hfUnavailable(Options o) {
        if (!Files.isRegularFile(o.hfScript())) return "no " + o.hfScript();
        try {
            // find_spec, not import: a second or so instead of the ten an import of torch takes, out of the call's time
            Process p = new ProcessBuilder(o.python(), "-c", "import importlib.util as u, sys; "
                    + "sys.exit(0 if u.find_spec('torch') and u.find_spec('transformers') else 'no torch or transformers')")
                    .redirectErrorStream(true).start();
            String msg = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return o.python() + " did not look for torch and transformers within 120 s";
            }
            if (p.exitValue() != 0) return o.python() + " has no torch or transformers: " + lastLine(msg);
            return null;
        } catch (IOException e) {
            return "no " + o.python() + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    /** Runs hf_bench.py (its output goes to ours); null when it wrote its JSON, else why not. */
    private static String runHf(Options o, Path theirs) {
        List<String> cmd = new ArrayList<>(List.of(o.python(), o.hfScript().toString(), "--tokens", Integer.toString(o.tokens()),
                "--json", theirs.toString(), "--dtypes", String.join(",", o.dtypes().stream().map(GpuBench::shortName).toList())));
        System.out.println("HF side: " + String.join(" ", cmd));
        try {
            Process p = new ProcessBuilder(cmd).inheritIO().start();
            if (!p.waitFor(o.hfTimeoutSeconds(), TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return "hf_bench.py ran past " + o.hfTimeoutSeconds() + " s";
            }
            if (p.exitValue() != 0) return "hf_bench.py exited with " + p.exitValue();
            return Files.isRegularFile(theirs) ? null : "hf_bench.py wrote no JSON";
        } catch (IOException e) {
            return "hf_bench.py could not start: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    static String shortName(Precision p) {
        return p == Precision.FP16 ? "fp16" : "bf16";
    }

    private static String lastLine(String s) {
        String[] l = s.split("\n");
        return l.length == 0 ? "" : l[l.length - 1];
    }

    private static final Pattern OUR_GEMM = Pattern.compile("gemm_(wgmma_ws|wgmma|mma|wmma)(_fp16)?_(\\d+x\\d+x\\d+)(_splitk\\d+)?_tflops");

    /**
     * The measures: per dtype, forward alone / HF sdpa forward (goal ≤ 0.9), forward with probes / forward
     * alone (goal ≤ 1.1), and per GEMM shape our best kernel's TFLOP/s / torch.matmul's (goals ≥ 0.9 at 4096³, ≥ 0.8
     * elsewhere). Missing sides leave the ratio out.
     */
    static ObjectNode ratios(ObjectMapper om, JsonNode m, JsonNode h) {
        ObjectNode r = om.createObjectNode();
        for (String d : List.of("bf16", "fp16")) {
            String p = d.equals("bf16") ? "" : d + "_";
            double fwd = num(m, p + "forward_ms_no_copies"), probes = num(m, p + "forward_ms_best");
            if (fwd > 0 && probes > 0) r.put(d + "_forward_with_probes_over_forward", round(probes / fwd));
            double hfFwd = num(h, "hf_" + p + "sdpa_forward_nohooks_ms_best");
            if (fwd > 0 && hfFwd > 0) r.put(d + "_forward_over_hf_sdpa", round(fwd / hfFwd));
            double graphs = num(m, p + "forward_ms_no_copies_graphs");
            if (graphs > 0 && hfFwd > 0) r.put(d + "_forward_graphs_over_hf_sdpa", round(graphs / hfFwd));
            if (graphs > 0 && probes > 0) r.put(d + "_forward_with_probes_over_forward_graphs", round(probes / graphs));
            double hfHooks = num(h, "hf_" + p + "sdpa_forward_ms_best");
            if (probes > 0 && hfHooks > 0) r.put(d + "_forward_with_probes_over_hf_hooks", round(probes / hfHooks));
        }
        Map<String, Double> best = new java.util.TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = m.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            Matcher x = OUR_GEMM.matcher(e.getKey());
            if (!x.matches()) continue;
            String key = (x.group(2) == null ? "bf16" : "fp16") + "_" + x.group(3);
            best.merge(key, e.getValue().asDouble(), Math::max);
        }
        for (Map.Entry<String, Double> e : best.entrySet()) {
            String d = e.getKey().substring(0, 4), shape = e.getKey().substring(5);
            double torch = num(h, "torch_matmul_" + d + "_" + shape + "_tflops");
            if (torch > 0) r.put("gemm_" + e.getKey() + "_over_torch", round(e.getValue() / torch));
        }
        return r;
    }

    private static double num(JsonNode n, String key) {
        return n != null && n.has(key) && n.get(key).isNumber() ? n.get(key).asDouble() : -1;
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
