package modeldiff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.BadInputException;
import modeldiff.tokenizer.Encoded;
import modeldiff.tokenizer.ReleaseTokenizer;
import modeldiff.tokenizer.TextTokenizer;
import modeldiff.util.AtomicFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Text to ids with the release's own tokenizer, the contract other tools script against (docs/tokenizers.md):
 * {@code --jsonl FILE --json OUT} writes {"ids": [[...], ...]}, one list per line (each line a JSON string), special
 * tokens added as tokenizer.encode(text) adds them; {@code --chat FILE.json --json OUT} writes {"text", "ids"} as
 * apply_chat_template. Without --json it prints the ids with their pieces.
 */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = {"Tokenize text with the release's tokenizer.json (default) or tokenizer.model (--slow), or render and tokenize a chat.",
                "Exit 0, or 2 for bad input (including a chat template that fails or breaks the sandbox)."})
final class TokenizeCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Release folder (tokenizer.json, tokenizer.model, tokenizer_config.json). Never modified.")
    Path model;

    @Option(names = "--jsonl", paramLabel = "FILE", description = "One JSON string per line; one id list per line.")
    Path jsonl;

    @Mixin
    TextInputOptions input;

    @Option(names = "--slow", description = "Use tokenizer.model (SentencePiece) instead of tokenizer.json.")
    boolean slow;

    @Option(names = "--no-special-tokens", description = "Do not add BOS/EOS (encode(text, add_special_tokens=False)).")
    boolean noSpecial;

    @Option(names = "--json", paramLabel = "OUT", description = "Write {\"ids\": [[...], ...]} (--jsonl), {\"text\", \"ids\"} (--chat) or {\"text\", \"ids\", \"pieces\"} (--text).")
    Path json;

    @Option(names = "--force", description = "Replace an existing --json file.")
    boolean force;

    @Option(names = "--debug", description = "Show stack traces.")
    boolean debug;

    @Override
    public Integer call() {
        int inputs = (jsonl != null ? 1 : 0) + (input.text != null ? 1 : 0) + (input.textFile != null ? 1 : 0) + (input.chat != null ? 1 : 0);
        if (inputs != 1) throw new BadInputException("give one of --jsonl, --text, --text-file, --chat");
        if (input.addGenerationPrompt && input.chat == null) throw new BadInputException("--add-generation-prompt needs --chat");
        if (input.chat != null && noSpecial) throw new BadInputException("--no-special-tokens: a chat is always tokenized without (the template writes them)");
        if (json != null) Common.checkOutput(json, model, force);
        try (ReleaseTokenizer release = ReleaseTokenizer.open(model)) {
            TextTokenizer t = slow ? release.slow() : release.primary();
            ObjectNode out = JSON.createObjectNode();
            if (jsonl != null) {
                ArrayNode all = out.putArray("ids");
                List<String> lines = readJsonl(jsonl);
                for (int i = 0; i < lines.size(); i++) {
                    Encoded e = t.encode(lines.get(i), !noSpecial);
                    ArrayNode a = all.addArray();
                    for (int id : e.ids()) a.add(id);
                    if (json == null) show("line " + (i + 1), lines.get(i), e);
                }
            } else if (input.chat != null) {
                String text = release.renderChat(TextInputOptions.readChat(input.chat), input.addGenerationPrompt);
                Encoded e = t.encode(text, false);   // as apply_chat_template(tokenize=True): the template writes the specials
                out.put("text", text);
                ArrayNode a = out.putArray("ids");
                for (int id : e.ids()) a.add(id);
                if (json == null) show("chat", text, e);
            } else {
                String text = input.text != null ? input.text : TextInputOptions.readText(input.textFile);
                Encoded e = t.encode(text, !noSpecial);
                out.put("text", text);
                ArrayNode a = out.putArray("ids");
                for (int id : e.ids()) a.add(id);
                ArrayNode p = out.putArray("pieces");
                e.pieces().forEach(p::add);
                if (json == null) show("text", text, e);
            }
            if (json != null) {
                AtomicFiles.writeString(json, out.toString() + "\n");
                System.out.println("wrote " + json + " (" + t.source() + ")");
            }
        }
        return 0;
    }

    /** Human-readable: the text, then id:piece pairs. */
    private static void show(String label, String text, Encoded e) {
        System.out.println(label + ": " + Common.quoted(text) + " -> " + e.length() + " tokens");
        StringBuilder b = new StringBuilder("  ");
        int[] ids = e.ids();
        for (int i = 0; i < ids.length; i++) {
            String piece = ids[i] + ":" + Common.quoted(e.pieces().get(i));
            if (b.length() + piece.length() > 118) {
                System.out.println(b);
                b = new StringBuilder("  ");
            }
            b.append(piece).append(' ');
        }
        if (b.length() > 2) System.out.println(b.toString().stripTrailing());
    }

    /** Each non-empty line a JSON string (bad input naming the line otherwise). */
    static List<String> readJsonl(Path file) {
        List<String> out = new ArrayList<>();
        List<String> lines;
        try {
            if (!Files.isRegularFile(file)) throw new BadInputException(file + ": not a file");
            if (Files.size(file) > TextInputOptions.MAX_TEXT_BYTES * 4) throw new BadInputException(file + ": over 64 MiB");
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new BadInputException(file + ": not UTF-8 text");
        } catch (IOException e) {
            throw new BadInputException(file + ": cannot read: " + e.getMessage());
        }
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) continue;
            try {
                JsonNode n = JSON.readTree(lines.get(i));
                if (n == null || !n.isTextual()) throw new BadInputException(file + ": line " + (i + 1) + ": expected a JSON string");
                out.add(n.asText());
            } catch (IOException e) {
                throw new BadInputException(file + ": line " + (i + 1) + ": not JSON: " + BadInputException.oneLine(e.getMessage()));
            }
        }
        return out;
    }
}
