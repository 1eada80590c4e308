package modeldiff.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.model.BadInputException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What tokenizer_config.json (with special_tokens_map.json and chat_template.jinja) says about special tokens, BOS/EOS
 * and the chat template, read as HF transformers 5.x reads it. {@code addBos}/{@code addEos} are null when the file
 * does not set them: HF then keeps tokenizer.json's post-processor as it is.
 */
public record TokenizerSettings(String bosToken, String eosToken, String unkToken, String padToken, Boolean addBos,
                                Boolean addEos, String chatTemplate, List<String> extraSpecialTokens,
                                Map<Integer, String> addedTokensDecoder, String tokenizerClass) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public static final TokenizerSettings NONE = new TokenizerSettings(null, null, null, null, null, null, null, List.of(), Map.of(), null);

    /** Reads DIR/tokenizer_config.json (absent: defaults), DIR/special_tokens_map.json and DIR/chat_template.jinja. */
    public static TokenizerSettings read(Path dir) {
        JsonNode cfg = readJson(dir.resolve("tokenizer_config.json"));
        JsonNode map = readJson(dir.resolve("special_tokens_map.json"));
        String template = template(dir, cfg);
        List<String> extra = new ArrayList<>();
        for (String key : List.of("additional_special_tokens", "extra_special_tokens"))
            for (JsonNode n : cfg.path(key).isArray() ? cfg.path(key) : map.path(key))
                if (content(n) != null && !extra.contains(content(n))) extra.add(content(n));
        Map<Integer, String> decoder = new LinkedHashMap<>();
        cfg.path("added_tokens_decoder").properties().forEach(e -> {
            try {
                if (content(e.getValue()) != null) decoder.put(Integer.parseInt(e.getKey()), content(e.getValue()));
            } catch (NumberFormatException ignored) {
                // not an id: HF fails on it too; lint reports the file
            }
        });
        return new TokenizerSettings(special(cfg, map, "bos_token"), special(cfg, map, "eos_token"), special(cfg, map, "unk_token"),
                special(cfg, map, "pad_token"), bool(cfg, "add_bos_token", dir), bool(cfg, "add_eos_token", dir), template,
                List.copyOf(extra), Map.copyOf(decoder), cfg.path("tokenizer_class").isTextual() ? cfg.get("tokenizer_class").asText() : null);
    }

    /** The named special tokens as the chat template sees them (bos_token, eos_token, unk_token, pad_token). */
    public Map<String, Object> templateVariables() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("bos_token", bosToken == null ? "" : bosToken);
        m.put("eos_token", eosToken == null ? "" : eosToken);
        m.put("unk_token", unkToken == null ? "" : unkToken);
        m.put("pad_token", padToken == null ? "" : padToken);
        m.put("additional_special_tokens", extraSpecialTokens);
        return m;
    }

    /** Named special tokens, then the extra ones, without nulls or repeats. */
    public List<String> specialTokens() {
        List<String> out = new ArrayList<>();
        for (String s : new String[]{bosToken, eosToken, unkToken, padToken}) if (s != null && !out.contains(s)) out.add(s);
        for (String s : extraSpecialTokens) if (!out.contains(s)) out.add(s);
        return out;
    }

    private static String template(Path dir, JsonNode cfg) {
        // HF 5.x saves the template beside the config and reads that file in preference to the config's key.
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            try {
                return Files.readString(jinja, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new BadInputException(jinja + ": cannot read: " + e.getMessage());
            }
        }
        JsonNode t = cfg.get("chat_template");
        if (t == null || t.isNull()) return null;
        if (t.isTextual()) return t.asText();
        if (t.isArray()) {   // a list of {name, template}: HF uses the one named "default"
            for (JsonNode n : t)
                if ("default".equals(n.path("name").asText()) && n.path("template").isTextual()) return n.get("template").asText();
            throw new BadInputException(dir.resolve("tokenizer_config.json") + ": chat_template: a list without a \"default\" entry");
        }
        throw new BadInputException(dir.resolve("tokenizer_config.json") + ": chat_template: expected a string, got " + t.getNodeType());
    }

    private static String special(JsonNode cfg, JsonNode map, String key) {
        String v = content(cfg.get(key));
        return v != null ? v : content(map.get(key));
    }

    private static Boolean bool(JsonNode cfg, String key, Path dir) {
        JsonNode n = cfg.get(key);
        if (n == null || n.isNull()) return null;
        if (!n.isBoolean()) throw new BadInputException(dir.resolve("tokenizer_config.json") + ": " + key + ": expected true or false, got " + n);
        return n.asBoolean();
    }

    /** A special token as HF writes it: a string, or an AddedToken object with "content". */
    static String content(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isObject() && n.path("content").isTextual()) return n.get("content").asText();
        return null;
    }

    static JsonNode readJson(Path p) {
        if (!Files.isRegularFile(p)) return JSON.createObjectNode();
        try {
            JsonNode n = JSON.readTree(p.toFile());
            if (n == null || !n.isObject()) throw new BadInputException(p + ": expected a JSON object");
            return n;
        } catch (IOException e) {
            throw new BadInputException(p + ": not valid JSON: " + BadInputException.oneLine(e.getMessage()));
        }
    }
}
