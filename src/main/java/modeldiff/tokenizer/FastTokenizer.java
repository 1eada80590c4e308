package modeldiff.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.BadInputException;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * tokenizer.json through HF's Rust tokenizers (DJL's JNI binding), as transformers 5.17 loads a release: special
 * tokens named in tokenizer_config.json but missing from tokenizer.json's added tokens are added (with their
 * vocabulary id, or the next free id), and the post-processor stays tokenizer.json's own. transformers 5.17 does not
 * rebuild it from add_bos_token / add_eos_token: measured on the GPU box, a release whose tokenizer_config.json sets
 * add_eos_token true, or add_bos_token false, or add_bos_token true over a tokenizer.json without post-processor,
 * encodes exactly as tokenizer.json says (fixtures bpe-add-eos, bpe-no-bos, bpe-gpt2-new-bos, sp-bpe-flags).
 * No truncation and no padding, whatever tokenizer.json says: modeldiff wants every token.
 */
public final class FastTokenizer implements TextTokenizer {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HuggingFaceTokenizer tokenizer;
    private final Map<String, Integer> vocab;
    private final JsonNode json;

    private FastTokenizer(HuggingFaceTokenizer tokenizer, Map<String, Integer> vocab, JsonNode json) {
        this.tokenizer = tokenizer;
        this.vocab = vocab;
        this.json = json;
    }

    public static FastTokenizer open(Path file, TokenizerSettings settings) {
        ObjectNode json;
        try {
            JsonNode n = JSON.readTree(file.toFile());
            if (n == null || !n.isObject() || !n.path("model").isObject()) throw new BadInputException(file + ": not a tokenizer.json (no \"model\" object)");
            json = (ObjectNode) n;
        } catch (IOException e) {
            throw new BadInputException(file + ": not valid JSON: " + BadInputException.oneLine(e.getMessage()));
        }
        Map<String, Integer> vocab = vocabulary(json);
        addSpecialTokens(json, vocab, settings);
        json.putNull("truncation");
        json.putNull("padding");
        NativeLibraries.prepare();
        try {
            byte[] bytes = JSON.writeValueAsBytes(json);
            HuggingFaceTokenizer t = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(bytes),
                    Map.of("truncation", "false", "padding", "false", "addSpecialTokens", "true"));
            return new FastTokenizer(t, vocab, json);
        } catch (IOException | RuntimeException e) {
            if (e instanceof BadInputException b) throw b;
            throw new BadInputException(file + ": the tokenizers library refused it: " + BadInputException.oneLine(String.valueOf(e.getMessage())));
        }
    }

    @Override
    public Encoded encode(String text, boolean addSpecialTokens) {
        Encoding e = tokenizer.encode(text, addSpecialTokens, false);
        long[] ids = e.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = Math.toIntExact(ids[i]);
        return new Encoded(out, Arrays.asList(e.getTokens()));
    }

    @Override
    public int tokenId(String token) {
        Integer id = vocab.get(token);
        return id == null ? -1 : id;
    }

    /** Every token of the model's vocabulary and every added token, by id. */
    public Map<String, Integer> vocabulary() {
        return Map.copyOf(vocab);
    }

    /** tokenizer.json as loaded (after transformers' adjustments). */
    public JsonNode json() {
        return json;
    }

    @Override
    public String source() {
        return "tokenizer.json";
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    static Map<String, Integer> vocabulary(JsonNode json) {
        Map<String, Integer> v = new HashMap<>();
        JsonNode vocab = json.path("model").path("vocab");
        if (vocab.isObject()) vocab.properties().forEach(e -> v.put(e.getKey(), e.getValue().asInt()));
        else if (vocab.isArray())   // Unigram: [[piece, score], ...], the id is the index
            for (int i = 0; i < vocab.size(); i++) v.putIfAbsent(vocab.get(i).path(0).asText(), i);
        for (JsonNode a : json.path("added_tokens")) v.put(a.path("content").asText(), a.path("id").asInt());
        return v;
    }

    private static void addSpecialTokens(ObjectNode json, Map<String, Integer> vocab, TokenizerSettings s) {
        List<String> wanted = new ArrayList<>(s.specialTokens());
        for (String t : s.addedTokensDecoder().values()) if (!wanted.contains(t)) wanted.add(t);
        ArrayNode added = json.has("added_tokens") && json.get("added_tokens").isArray() ? (ArrayNode) json.get("added_tokens") : json.putArray("added_tokens");
        List<String> present = new ArrayList<>();
        for (JsonNode a : added) present.add(a.path("content").asText());
        int next = vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        for (String t : wanted) {
            if (present.contains(t)) continue;
            Integer id = s.addedTokensDecoder().entrySet().stream().filter(e -> e.getValue().equals(t)).map(Map.Entry::getKey).findFirst().orElse(vocab.get(t));
            if (id == null) id = next++;
            ObjectNode a = added.addObject();
            a.put("id", id).put("content", t).put("single_word", false).put("lstrip", false).put("rstrip", false)
                    .put("normalized", false).put("special", true);
            vocab.put(t, id);
            present.add(t);
        }
    }

}
