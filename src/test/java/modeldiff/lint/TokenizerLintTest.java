package modeldiff.lint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.DType;
import modeldiff.synth.SyntheticModel;
import modeldiff.tokenizer.ReleaseTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tokenizer-file rules on the HF fixture tokenizers (src/test/resources/tokenizers, made by
 * reference-impls/tokenizer_fixtures.py), each put beside a small random Llama-layout model whose vocabulary and
 * BOS/EOS ids match it: every rule flags its planted case and stays quiet on the clean ones.
 */
class TokenizerLintTest {
    static final Path TOKENIZERS = Path.of("src/test/resources/tokenizers");
    static final List<String> NEW_RULES = List.of(Rules.TOK_FAST_SLOW_MISMATCH, Rules.TOK_BOS_DOUBLED, Rules.TOK_ADDED_UNTRAINED,
            Rules.TOK_PRETOKENIZER_REGEX, Rules.TOK_FILES_UNREADABLE, Rules.TOK_FLAGS_IGNORED);

    @TempDir
    Path tmp;

    /** A random model sized to the tokenizer (vocabulary rounded up to 64), with the tokenizer's files copied in. */
    Path release(String tokenizer) throws IOException {
        Path src = TOKENIZERS.resolve(tokenizer), out = tmp.resolve(tokenizer);
        int vocab, bos, eos;
        try (ReleaseTokenizer t = ReleaseTokenizer.open(src)) {
            vocab = t.hasFast() ? t.fast().vocabulary().values().stream().mapToInt(Integer::intValue).max().orElse(0) + 1 : 1200;
            bos = t.tokenId(t.settings().bosToken());
            eos = t.tokenId(t.settings().eosToken());
        }
        ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(modeldiff.Fixtures.model("llama").resolve("config.json").toFile());
        cfg.put("vocab_size", (vocab + 63) / 64 * 64).put("bos_token_id", bos).put("eos_token_id", eos);
        SyntheticModel.write(cfg, "test", "fixture llama config", out, 7, 1, DType.BF16, false, SyntheticModel.SHARD_BYTES, s -> { });
        try (Stream<Path> s = Files.list(src)) {
            for (Path p : s.toList())
                if (!p.getFileName().toString().equals("expected.json")) Files.copy(p, out.resolve(p.getFileName()));
        }
        return out;
    }

    static LintReport lint(Path dir) {
        return Planted.lintUnchanged(dir, LintOptions.defaults());
    }

    static List<Finding> tokenizerFindings(LintReport r) {
        return r.findings().stream().filter(f -> NEW_RULES.contains(f.rule())).toList();
    }

    @Test
    void cleanReleasesRaiseNothing() throws IOException {
        for (String t : List.of("bpe", "bpe-gpt2")) {
            LintReport r = lint(release(t));
            assertEquals(List.of(), r.findings(), t + ": " + r.toText());
        }
    }

    @Test
    void bosDoubledWhenTemplateWritesBosAndTokenizerAddsIt() throws IOException {
        List<Finding> f = tokenizerFindings(lint(release("bpe-bos-doubled")));
        assertEquals(List.of(Rules.TOK_BOS_DOUBLED), f.stream().map(Finding::rule).toList(), f.toString());
        assertEquals(Severity.WARNING, f.get(0).severity());
    }

    @Test
    void gpt2PatternOverALlama3Vocabulary() throws IOException {
        List<Finding> f = tokenizerFindings(lint(release("bpe-regex-mismatch")));
        assertEquals(List.of(Rules.TOK_PRETOKENIZER_REGEX), f.stream().map(Finding::rule).toList(), f.toString());
        System.out.println("TokenizerLintTest: " + f.get(0).message());
    }

    @Test
    void fastSlowMismatchOnHfConvertedSentencePiece() throws IOException {
        for (String t : List.of("sp-bpe", "sp-unigram")) {
            List<Finding> f = tokenizerFindings(lint(release(t)));
            assertEquals(List.of(Rules.TOK_FAST_SLOW_MISMATCH), f.stream().map(Finding::rule).toList(), t + ": " + f);
            System.out.println("TokenizerLintTest " + t + ": " + f.get(0).message());
        }
    }

    /** Releases whose flags transformers 5.17 was measured to ignore (tokenizer_fixtures_flags.py). */
    @Test
    void flagsTheTokenizerJsonIgnores() throws IOException {
        for (String t : List.of("bpe-add-eos", "bpe-no-bos", "bpe-gpt2-new-bos", "sp-bpe-flags")) {
            List<Finding> f = tokenizerFindings(lint(release(t)));
            assertTrue(f.stream().map(Finding::rule).toList().contains(Rules.TOK_FLAGS_IGNORED), t + ": " + f);
            System.out.println("TokenizerLintTest " + t + ": " + f.stream().filter(x -> x.rule().equals(Rules.TOK_FLAGS_IGNORED)).findFirst().get().message());
        }
    }

    @Test
    void demoFlagsAgreeWithItsTokenizerJson() {
        assertEquals(List.of(), tokenizerFindings(lint(Path.of("src/main/resources/modeldiff/demo/model"))));
    }

    @Test
    void hostileTemplateIsAFindingNotACrash() throws IOException {
        Path dir = release("bpe");
        Planted.at(dir).json("tokenizer_config.json", c -> c.put("chat_template", "{{ ''.getClass().getClassLoader() }}"));
        List<Finding> f = tokenizerFindings(lint(dir));
        assertEquals(List.of(Rules.TOK_FILES_UNREADABLE), f.stream().map(Finding::rule).toList(), f.toString());
        assertTrue(f.get(0).message().contains("not allowed"), f.get(0).message());
    }

    @Test
    void untrainedSpecialTokenRows() throws IOException {
        Path dir = release("bpe");
        int bos, reserved;
        try (ReleaseTokenizer t = ReleaseTokenizer.open(dir)) {
            bos = t.tokenId("<|begin_of_text|>");
            reserved = t.tokenId("<|reserved_1|>");
        }
        Planted.at(dir).tensors(m -> {
            m.get("model.embed_tokens.weight").row(bos, 0);
            m.get("model.embed_tokens.weight").row(reserved, 0);
        });
        List<Finding> f = tokenizerFindings(lint(dir));
        assertEquals(List.of(Rules.TOK_ADDED_UNTRAINED), f.stream().map(Finding::rule).toList(), f.toString());
        assertEquals(Severity.WARNING, f.get(0).severity(), "BOS is fed to the model");
        assertTrue(f.get(0).message().contains("<|begin_of_text|> (" + bos + ")") && f.get(0).message().contains("<|reserved_1|>"), f.get(0).message());
    }
}
