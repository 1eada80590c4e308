package modeldiff.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Does a byte-level BPE release split text with GPT-2's pattern while its vocabulary was built with another?
 * BPE merges never cross a pre-tokenizer boundary, so every token of a vocabulary trained under a pattern is one
 * piece under that pattern. A token that GPT-2's pattern cuts in two ("(x", "):\n", ".get") can never be produced
 * when GPT-2's pattern does the splitting: the vocabulary came from another pattern (llama.cpp's GPT-2 regex on
 * Llama 3, ggml-org/llama.cpp#6914; Mistral's, transformers#42299).
 */
public final class PreTokenizerCheck {
    /** GPT-2's pattern, as HF tokenizers' ByteLevel uses it (use_regex). */
    public static final String GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    private static final Pattern GPT2 = Pattern.compile(GPT2_PATTERN, Pattern.UNICODE_CHARACTER_CLASS);

    /** Unreachable tokens at or above this share of those checked (and at least {@link #MIN_UNREACHABLE}) are a finding. */
    public static final double SHARE = 0.01;
    public static final int MIN_UNREACHABLE = 10;

    public record Result(int checked, int unreachable, List<String> examples) {
        public boolean suspicious() {
            return unreachable >= MIN_UNREACHABLE && unreachable >= SHARE * checked;
        }
    }

    private PreTokenizerCheck() {
    }

    /** Null when this is not byte-level BPE splitting with GPT-2's pattern (the question does not arise). */
    public static Result check(JsonNode tokenizerJson) {
        JsonNode model = tokenizerJson.path("model");
        if (!"BPE".equals(model.path("type").asText()) || !model.path("vocab").isObject()) return null;
        if (!splitsWithGpt2(tokenizerJson.path("pre_tokenizer"))) return null;
        Set<String> added = new HashSet<>();
        for (JsonNode a : tokenizerJson.path("added_tokens")) added.add(a.path("content").asText());
        Map<Character, Integer> bytes = byteDecoder();
        int checked = 0, unreachable = 0;
        List<String> examples = new ArrayList<>();
        var it = model.path("vocab").fieldNames();
        while (it.hasNext()) {
            String token = it.next();
            if (added.contains(token) || token.length() < 2) continue;
            String text = decode(token, bytes);
            if (text == null || text.codePointCount(0, text.length()) < 2) continue;   // a piece of a character: no regex answer
            checked++;
            if (!onePiece(text)) {
                unreachable++;
                if (examples.size() < 5) examples.add(text);
            }
        }
        return new Result(checked, unreachable, examples);
    }

    /** ByteLevel with use_regex (its default), or a Split whose pattern is GPT-2's, anywhere in the pre-tokenizer. */
    static boolean splitsWithGpt2(JsonNode pre) {
        if (pre == null || pre.isNull() || pre.isMissingNode()) return false;
        String type = pre.path("type").asText();
        if (type.equals("Sequence")) {
            for (JsonNode p : pre.path("pretokenizers")) if (splitsWithGpt2(p)) return true;
            return false;
        }
        if (type.equals("ByteLevel")) return !pre.has("use_regex") || pre.path("use_regex").asBoolean(true);
        if (type.equals("Split")) {
            JsonNode p = pre.path("pattern");
            String s = p.has("Regex") ? p.path("Regex").asText() : p.path("String").asText();
            return s.equals(GPT2_PATTERN);
        }
        return false;
    }

    static boolean onePiece(String text) {
        Matcher m = GPT2.matcher(text);
        return m.lookingAt() && m.end() == text.length();
    }

    /** GPT-2's byte-to-character table, inverted. */
    static Map<Character, Integer> byteDecoder() {
        Map<Character, Integer> out = new HashMap<>();
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) bs.add(b);
        for (int b = 0xA1; b <= 0xAC; b++) bs.add(b);
        for (int b = 0xAE; b <= 0xFF; b++) bs.add(b);
        for (int b : bs) out.put((char) b, b);
        int n = 0;
        for (int b = 0; b < 256; b++)
            if (!bs.contains(b)) out.put((char) (256 + n++), b);
        return out;
    }

    private static String decode(String token, Map<Character, Integer> table) {
        byte[] b = new byte[token.length()];
        for (int i = 0; i < token.length(); i++) {
            Integer v = table.get(token.charAt(i));
            if (v == null) return null;
            b[i] = (byte) (int) v;
        }
        try {
            return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
