package modeldiff.tokenizer;

import modeldiff.model.BadInputException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A release's own tokenizer: tokenizer.json (fast, the default, as transformers uses it) and/or tokenizer.model (slow,
 * SentencePiece), the settings of tokenizer_config.json, and its chat template. Opened lazily: a release with only one
 * of the two files works for the paths that need that one.
 */
public final class ReleaseTokenizer implements AutoCloseable {
    private final Path dir;
    private final TokenizerSettings settings;
    private FastTokenizer fast;
    private SlowTokenizer slow;

    /** Chat text as apply_chat_template(tokenize=False) renders it, and its ids as apply_chat_template(tokenize=True). */
    public record Chat(String text, Encoded encoded) {
    }

    private ReleaseTokenizer(Path dir, TokenizerSettings settings) {
        this.dir = dir;
        this.settings = settings;
    }

    /** A release folder with tokenizer.json or tokenizer.model (bad input otherwise). */
    public static ReleaseTokenizer open(Path dir) {
        if (!Files.isDirectory(dir)) throw new BadInputException(dir + ": not a directory");
        if (!has(dir))
            throw new BadInputException(dir + ": no tokenizer.json or tokenizer.model, so no text input; give token ids with --tokens");
        return new ReleaseTokenizer(dir, TokenizerSettings.read(dir));
    }

    /** True when the folder holds a tokenizer modeldiff can read. */
    public static boolean has(Path dir) {
        return Files.isRegularFile(dir.resolve("tokenizer.json")) || Files.isRegularFile(dir.resolve("tokenizer.model"));
    }

    public Path dir() {
        return dir;
    }

    public TokenizerSettings settings() {
        return settings;
    }

    public boolean hasFast() {
        return Files.isRegularFile(dir.resolve("tokenizer.json"));
    }

    public boolean hasSlow() {
        return Files.isRegularFile(dir.resolve("tokenizer.model"));
    }

    public synchronized FastTokenizer fast() {
        if (fast == null) {
            if (!hasFast()) throw new BadInputException(dir + ": no tokenizer.json");
            fast = FastTokenizer.open(dir.resolve("tokenizer.json"), settings);
        }
        return fast;
    }

    /**
     * SentencePiece with the release's special tokens around it: what tokenizer.json adds when the release has one
     * (so a fast/slow diff compares the text's tokens, not two conventions), else what tokenizer_config.json's
     * add_bos_token / add_eos_token say (HF's slow tokenizers honoured them), else nothing.
     */
    public synchronized SlowTokenizer slow() {
        if (slow == null) {
            if (!hasSlow()) throw new BadInputException(dir + ": no tokenizer.model (the slow path needs SentencePiece's model)");
            SlowTokenizer s = SlowTokenizer.open(dir.resolve("tokenizer.model"));
            try {
                s.setSpecialTokens(slowSpecials(s));
            } catch (RuntimeException e) {
                s.close();
                throw e;
            }
            slow = s;
        }
        return slow;
    }

    private SpecialTokens slowSpecials(SlowTokenizer s) {
        if (hasFast()) return SpecialTokens.observe(fast());
        if (settings.addBos() != null || settings.addEos() != null) {
            boolean bos = Boolean.TRUE.equals(settings.addBos()) && settings.bosToken() != null;
            boolean eos = Boolean.TRUE.equals(settings.addEos()) && settings.eosToken() != null;
            return new SpecialTokens(bos ? new int[]{idIn(s, settings.bosToken())} : new int[0], bos ? List.of(settings.bosToken()) : List.of(),
                    eos ? new int[]{idIn(s, settings.eosToken())} : new int[0], eos ? List.of(settings.eosToken()) : List.of());
        }
        return SpecialTokens.NONE;
    }

    private int idIn(SlowTokenizer s, String token) {
        int id = s.tokenId(token);
        if (id < 0) throw new BadInputException(dir.resolve("tokenizer.model") + ": has no piece '" + token + "' (the special token of tokenizer_config.json)");
        return id;
    }

    /** tokenizer.json when the release has one (what transformers uses), else tokenizer.model. */
    public TextTokenizer primary() {
        return hasFast() ? fast() : slow();
    }

    /** tokenizer.encode(text) (with special tokens) or encode(text, add_special_tokens=False). */
    public Encoded encode(String text, boolean addSpecialTokens) {
        return primary().encode(text, addSpecialTokens);
    }

    /** The chat template rendered (messages: a list of {role, content} maps), then tokenized without special tokens. */
    public Chat chat(List<?> messages, boolean addGenerationPrompt) {
        String text = renderChat(messages, addGenerationPrompt);
        // transformers tokenizes the rendered text with add_special_tokens=False: the template writes its own BOS.
        return new Chat(text, encode(text, false));
    }

    /** Only the rendered text. */
    public String renderChat(List<?> messages, boolean addGenerationPrompt) {
        if (settings.chatTemplate() == null)
            throw new BadInputException(dir + ": the release has no chat template (tokenizer_config.json chat_template, or chat_template.jinja)");
        return new ChatTemplate(settings.chatTemplate()).render(messages, addGenerationPrompt, settings);
    }

    /** Id of a token string in the primary tokenizer, or -1. */
    public int tokenId(String token) {
        return primary().tokenId(token);
    }

    @Override
    public synchronized void close() {
        if (fast != null) fast.close();
        if (slow != null) slow.close();
        fast = null;
        slow = null;
    }
}
