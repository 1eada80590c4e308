package modeldiff.tokenizer;

import ai.djl.sentencepiece.SpProcessor;
import ai.djl.sentencepiece.SpTokenizer;
import modeldiff.model.BadInputException;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * tokenizer.model through Google's SentencePiece (DJL's JNI binding): SentencePieceProcessor.encode(text), the
 * "slow" path, with the release's BOS/EOS around it ({@link SpecialTokens}). SentencePiece splits special-token
 * strings inside the text like any other text, as it always has.
 */
public final class SlowTokenizer implements TextTokenizer {
    private final SpTokenizer sp;
    private final SpProcessor processor;
    private SpecialTokens around = SpecialTokens.NONE;

    private SlowTokenizer(SpTokenizer sp) {
        this.sp = sp;
        this.processor = sp.getProcessor();
    }

    public static SlowTokenizer open(Path model) {
        NativeLibraries.prepare();
        try {
            return new SlowTokenizer(new SpTokenizer(model));
        } catch (IOException | RuntimeException e) {
            throw new BadInputException(model + ": SentencePiece cannot load it: " + BadInputException.oneLine(String.valueOf(e.getMessage())));
        }
    }

    /** The ids put before and after the text when special tokens are added. */
    void setSpecialTokens(SpecialTokens s) {
        this.around = s;
    }

    @Override
    public Encoded encode(String text, boolean addSpecialTokens) {
        int[] body = processor.encode(text);
        String[] pieces = processor.tokenize(text);
        if (pieces.length != body.length) pieces = Arrays.stream(body).mapToObj(processor::getToken).toArray(String[]::new);
        if (!addSpecialTokens || around.isEmpty()) return new Encoded(body, Arrays.asList(pieces));
        return around.wrap(new Encoded(body, Arrays.asList(pieces)));
    }

    @Override
    public int tokenId(String token) {
        int id = processor.getId(token);
        // SentencePiece answers unk_id for a piece it lacks: only the piece that is there maps back to itself.
        return token.equals(processor.getToken(id)) ? id : -1;
    }

    public String piece(int id) {
        return processor.getToken(id);
    }

    @Override
    public String source() {
        return "tokenizer.model";
    }

    @Override
    public void close() {
        sp.close();
    }

    /** Loads the SentencePiece library by opening a model; says which library answered. */
    static String selfCheck(Path model) {
        try (SlowTokenizer t = open(model)) {
            return "loaded offline; " + model.getFileName() + " encodes \"Hello\" as " + Arrays.toString(t.encode("Hello", false).ids());
        }
    }
}
