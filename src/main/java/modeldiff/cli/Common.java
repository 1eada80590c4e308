package modeldiff.cli;

import modeldiff.forward.ForwardInput;
import modeldiff.model.BadInputException;
import modeldiff.model.ModelConfig;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/** Options shared by commands that run a model on some tokens. */
final class Common {
    private Common() {
    }

    static final class InputOptions {
        @Option(names = "--tokens", split = ",", description = "Token ids, comma separated (default: BOS then 7 ids spread over the vocabulary).")
        int[] tokens;

        @Option(names = "--tokens-from", description = "Take tokens and position offset from this trace's metadata.")
        Path tokensFrom;

        @Option(names = "--position-offset", description = "Position of the first token (default 0).")
        Long positionOffset;

        @picocli.CommandLine.Mixin
        TextInputOptions textInput;

        /** True when the user chose the input (ids, a trace's ids, or text). */
        boolean explicit() {
            return tokens != null || tokensFrom != null || textInput.given();
        }

        /** The text behind the ids (the rendered chat for --chat), or null when ids were given. */
        String text() {
            return textInput.resolvedText();
        }

        ForwardInput resolve(ModelConfig config) {
            if ((tokens != null ? 1 : 0) + (tokensFrom != null ? 1 : 0) + (textInput.given() ? 1 : 0) > 1)
                throw new BadInputException("give one of --tokens, --tokens-from, --text/--text-file/--chat");
            int[] ids;
            long offset = positionOffset == null ? 0 : positionOffset;
            int[] fromText = textInput.ids(config.file.toAbsolutePath().getParent());
            if (fromText != null) {
                ids = fromText;
            } else if (tokensFrom != null) {
                Trace t = TraceFiles.read(tokensFrom);
                ids = t.tokens();
                if (positionOffset == null) offset = t.positionOffset();
            } else if (tokens != null) {
                ids = tokens;
            } else {
                ids = ForwardInput.defaultTokens(config, ForwardInput.DEFAULT_LENGTH);
            }
            if (ids.length == 0) throw new BadInputException("--tokens: no tokens given");
            if (offset < 0) throw new BadInputException("--position-offset must be >= 0, got " + offset);
            checkVocabulary(ids, config, tokensFrom != null ? tokensFrom + ": __metadata__.tokens"
                    : fromText != null ? "the release's tokenizer" : "--tokens");
            return new ForwardInput(ids, offset);
        }
    }

    /** Every id inside the vocabulary; {@code source} names where the ids came from (a flag, or a trace file). */
    static void checkVocabulary(int[] ids, ModelConfig config, String source) {
        for (int i = 0; i < ids.length; i++)
            if (ids[i] < 0 || ids[i] >= config.vocabSize)
                throw new BadInputException(source + ": token id " + ids[i] + " at index " + i + " is outside the vocabulary [0, "
                        + config.vocabSize + ") of " + config.file);
    }

    /**
     * Outputs never land inside the model folder (compared after resolving links, also for folders not created yet),
     * are never a directory, and never replace a file (or a link) without --force. {@code modelDir} may be null.
     */
    static void checkOutput(Path out, Path modelDir, boolean force) {
        Path o = resolved(out);
        if (modelDir != null && o.startsWith(resolved(modelDir)))
            throw new BadInputException(out + ": refusing to write inside the model folder " + modelDir);
        if (Files.isDirectory(out)) throw new BadInputException(out + ": is a directory");
        for (Path p = o.getParent(); p != null; p = p.getParent())
            if (Files.exists(p)) {
                if (!Files.isDirectory(p)) throw new BadInputException(out + ": " + p + " is not a directory");
                break;
            }
        if (Files.exists(out, LinkOption.NOFOLLOW_LINKS) && !force)
            throw new BadInputException(out + ": exists; pass --force to replace it");
    }

    /** Absolute, normalised, with the longest existing prefix replaced by its real path (links resolved). */
    static Path resolved(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        while (existing != null && !Files.exists(existing)) existing = existing.getParent();
        if (existing == null) return abs;
        try {
            return existing.toRealPath().resolve(existing.relativize(abs)).normalize();
        } catch (java.io.IOException e) {
            return abs;
        }
    }

    /** A one-line note on stderr when a trace holds NaN/Inf: reported, not fatal (compare flags such probes). */
    static void warnNonFinite(modeldiff.trace.Trace t, String what) {
        int bad = 0;
        String first = null;
        for (modeldiff.trace.Trace.Probe p : t.probes().values()) {
            for (double d : p.data())
                if (!Double.isFinite(d)) {
                    bad++;
                    if (first == null) first = p.name();
                    break;
                }
        }
        if (bad > 0)
            System.err.println("modeldiff: warning: " + what + ": " + bad + " probe(s) hold NaN/Inf, first " + first
                    + " (non-finite weights or overflow; `modeldiff lint` checks the weights)");
    }

    /** --probes, with a wrong value as bad input (exit 2) rather than the parser's IllegalArgumentException. */
    static modeldiff.forward.ProbeLevel probeLevel(String s) {
        try {
            return modeldiff.forward.ProbeLevel.parse(s);
        } catch (IllegalArgumentException e) {
            throw new BadInputException(e.getMessage());
        }
    }

    /**
     * The text's ids must be the trace's: a trace made on other ids (another tokenizer, the slow one, a BOS more or
     * less) cannot be explained by any fix. Bad input otherwise, naming the first difference.
     */
    static void checkSameTokens(int[] fromText, int[] inTrace, Path trace) {
        if (java.util.Arrays.equals(fromText, inTrace)) return;
        int i = 0;
        while (i < Math.min(fromText.length, inTrace.length) && fromText[i] == inTrace[i]) i++;
        throw new BadInputException(trace + ": its tokens are not the text's as the release tokenizes it: first difference at index " + i
                + " (trace " + (i < inTrace.length ? inTrace[i] : "ends") + ", tokenizer " + (i < fromText.length ? fromText[i] : "ends")
                + "; " + inTrace.length + " vs " + fromText.length + " tokens)");
    }

    /** A text for one line of output: JSON-quoted (newlines visible), cut at 120 characters. */
    static String quoted(String text) {
        String t = text.length() > 120 ? text.substring(0, 120) + "…" : text;
        try {
            return new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(t);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            return t;
        }
    }
}
