package modeldiff.tokenizer;

/** One way of turning text into ids: the release's tokenizer.json ("fast") or its tokenizer.model ("slow"). */
public interface TextTokenizer extends AutoCloseable {
    /** The ids for this text; with {@code addSpecialTokens}, the BOS/EOS the release adds by default. */
    Encoded encode(String text, boolean addSpecialTokens);

    /** The id of a token string, or -1 when the vocabulary lacks it. */
    int tokenId(String token);

    /** "tokenizer.json" or "tokenizer.model". */
    String source();

    @Override
    void close();
}
