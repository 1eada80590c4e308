package modeldiff.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * config.json's {@code quantization_config}, as far as loading weights needs it: {@code quant_method} ("fp8",
 * "mxfp4", or null when the key is absent), fp8's {@code weight_block_size} [rows, cols] (HF's default 128×128) and
 * {@code modules_to_not_convert}, the modules HF keeps unquantized. Read leniently: config.json's own errors are
 * ModelConfig's to report, so an unreadable file here is simply "no quantization_config".
 */
public record QuantizationConfig(String method, int blockRows, int blockCols, List<String> modulesToNotConvert) {
    public static final QuantizationConfig NONE = new QuantizationConfig(null, 128, 128, List.of());

    public static QuantizationConfig read(Path dir) {
        Path file = dir.resolve("config.json");
        JsonNode root;
        try {
            if (!Files.isRegularFile(file) || Files.size(file) > ModelConfig.MAX_CONFIG_BYTES) return NONE;
            root = SafeTensorsFile.JSON.readTree(Files.readAllBytes(file));
        } catch (IOException e) {
            return NONE;
        }
        JsonNode q = root == null ? null : root.get("quantization_config");
        if (q == null || !q.isObject()) return NONE;
        String method = q.path("quant_method").isTextual() ? q.get("quant_method").asText() : null;
        int br = 128, bc = 128;
        JsonNode bs = q.get("weight_block_size");
        if (bs != null && bs.isArray() && bs.size() == 2 && bs.get(0).canConvertToInt() && bs.get(1).canConvertToInt()
                && bs.get(0).asInt() > 0 && bs.get(1).asInt() > 0) {
            br = bs.get(0).asInt();
            bc = bs.get(1).asInt();
        }
        List<String> keep = new ArrayList<>();
        JsonNode m = q.get("modules_to_not_convert");
        if (m != null && m.isArray()) m.forEach(n -> {
            if (n.isTextual()) keep.add(n.asText());
        });
        return new QuantizationConfig(method, br, bc, List.copyOf(keep));
    }

    /**
     * Whether HF keeps the module owning tensor {@code name} unquantized: a pattern matches as HF's fp8 integration
     * does (a substring of the name with layer numbers written "*") or as its mxfp4 integration does (a prefix,
     * "*" standing for any one name part).
     */
    public boolean notConverted(String name) {
        String module = name.contains(".") ? name.substring(0, name.lastIndexOf('.')) : name;
        String starred = module.replaceAll("\\d+", "*");
        for (String p : modulesToNotConvert) {
            if (starred.contains(p)) return true;
            String regex = Pattern.quote(p).replace("*", "\\E[^.]*\\Q");
            if (Pattern.compile(regex + "(\\..*)?").matcher(module).matches()) return true;
        }
        return false;
    }
}
