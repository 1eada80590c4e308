package modeldiff.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The GPT-2-pattern check on the fixture vocabularies trained by HF tokenizers 0.23.2 on the GPU box. */
class PreTokenizerCheckTest {
    static final Path ROOT = Path.of("src/test/resources/tokenizers");

    static PreTokenizerCheck.Result check(String release) throws IOException {
        return PreTokenizerCheck.check(new ObjectMapper().readTree(ROOT.resolve(release).resolve("tokenizer.json").toFile()));
    }

    @Test
    void vocabularyTrainedWithGpt2sPatternHasNoUnreachableToken() throws IOException {
        PreTokenizerCheck.Result r = check("bpe-gpt2");
        System.out.println("PreTokenizerCheckTest bpe-gpt2: " + r);
        assertEquals(0, r.unreachable(), r.toString());
        assertFalse(r.suspicious());
    }

    @Test
    void llama3VocabularyUnderGpt2sPatternIsFlagged() throws IOException {
        PreTokenizerCheck.Result r = check("bpe-regex-mismatch");
        System.out.println("PreTokenizerCheckTest bpe-regex-mismatch: " + r);
        assertTrue(r.suspicious(), r.toString());
    }

    @Test
    void notAskedWhenThePatternIsLlama3s() throws IOException {
        assertNull(check("bpe"), "the bpe fixture splits with Llama 3's pattern: the question does not arise");
    }

    @Test
    void gpt2PatternPieces() {
        assertTrue(PreTokenizerCheck.onePiece(" hello"));
        assertTrue(PreTokenizerCheck.onePiece("   "));
        assertTrue(PreTokenizerCheck.onePiece(" 123"));
        assertFalse(PreTokenizerCheck.onePiece("(x"), "GPT-2 splits punctuation from letters; Llama 3's pattern keeps one leading mark");
        assertFalse(PreTokenizerCheck.onePiece(":\n"), "GPT-2 splits a newline from punctuation");
    }
}
