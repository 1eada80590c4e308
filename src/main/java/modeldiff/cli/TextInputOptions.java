package modeldiff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.model.BadInputException;
import modeldiff.tokenizer.ReleaseTokenizer;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Text in, through the release's own tokenizer: --text, --text-file, or --chat FILE.json rendered by the release's
 * chat template (--add-generation-prompt). Shared by every command that runs or lints a model on some input.
 */
final class TextInputOptions {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final long MAX_TEXT_BYTES = 16L << 20;

    @Option(names = "--text", paramLabel = "TEXT", description = "Text, tokenized by the release's tokenizer.json (or tokenizer.model) with its default special tokens, as tokenizer.encode(text).")
    String text;

    @Option(names = "--text-file", paramLabel = "FILE", description = "Like --text, the text read from a UTF-8 file.")
    Path textFile;

    @Option(names = "--chat", paramLabel = "FILE.json", description = "A conversation ([{\"role\": ..., \"content\": ...}, ...]) rendered by the release's chat template and tokenized as apply_chat_template(tokenize=True).")
    Path chat;

    @Option(names = "--add-generation-prompt", description = "With --chat: end with the template's assistant prompt.")
    boolean addGenerationPrompt;

    /** The text the ids came from (the rendered chat for --chat), once {@link #ids} returned ids. */
    private String resolvedText;

    boolean given() {
        return text != null || textFile != null || chat != null;
    }

    String resolvedText() {
        return resolvedText;
    }

    /** Ids for the given text or chat, tokenized by the release in {@code modelDir}; null when none was given. */
    int[] ids(Path modelDir) {
        int n = (text != null ? 1 : 0) + (textFile != null ? 1 : 0) + (chat != null ? 1 : 0);
        if (n == 0) {
            if (addGenerationPrompt) throw new BadInputException("--add-generation-prompt needs --chat");
            return null;
        }
        if (n > 1) throw new BadInputException("give one of --text, --text-file, --chat");
        if (addGenerationPrompt && chat == null) throw new BadInputException("--add-generation-prompt needs --chat");
        try (ReleaseTokenizer t = ReleaseTokenizer.open(modelDir)) {
            if (!t.hasFast())
                System.err.println("modeldiff: note: " + modelDir + " has no tokenizer.json; tokenizing with tokenizer.model (SentencePiece). "
                        + "transformers would convert it first, and its conversion can differ (docs/tokenizers.md)");
            int[] ids;
            if (chat != null) {
                ReleaseTokenizer.Chat c = t.chat(readChat(chat), addGenerationPrompt);
                resolvedText = c.text();
                ids = c.encoded().ids();
            } else {
                resolvedText = text != null ? text : readText(textFile);
                ids = t.encode(resolvedText, true).ids();
            }
            if (ids.length == 0) throw new BadInputException("the text tokenizes to no tokens");
            return ids;
        }
    }

    static String readText(Path file) {
        try {
            if (!Files.isRegularFile(file)) throw new BadInputException(file + ": not a file");
            if (Files.size(file) > MAX_TEXT_BYTES) throw new BadInputException(file + ": over " + (MAX_TEXT_BYTES >> 20) + " MiB");
            return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(file))).toString();
        } catch (CharacterCodingException e) {
            throw new BadInputException(file + ": not UTF-8 text");
        } catch (IOException e) {
            throw new BadInputException(file + ": cannot read: " + e.getMessage());
        }
    }

    /** A JSON list of {role, content} objects (content a string, or whatever JSON the template expects). */
    static List<?> readChat(Path file) {
        JsonNode n;
        try {
            if (!Files.isRegularFile(file)) throw new BadInputException(file + ": not a file");
            if (Files.size(file) > MAX_TEXT_BYTES) throw new BadInputException(file + ": over " + (MAX_TEXT_BYTES >> 20) + " MiB");
            n = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new BadInputException(file + ": not valid JSON: " + BadInputException.oneLine(e.getMessage()));
        }
        if (n == null || !n.isArray() || n.isEmpty()) throw new BadInputException(file + ": expected a non-empty JSON list of {\"role\", \"content\"} messages");
        for (int i = 0; i < n.size(); i++) {
            JsonNode m = n.get(i);
            if (!m.isObject() || !m.path("role").isTextual())
                throw new BadInputException(file + ": message " + i + ": expected an object with a string \"role\"");
            if (!m.has("content")) throw new BadInputException(file + ": message " + i + ": no \"content\"");
        }
        return JSON.convertValue(n, List.class);
    }
}
