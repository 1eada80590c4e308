package modeldiff.cli;

import modeldiff.forward.ForwardInput;
import modeldiff.model.BadInputException;
import modeldiff.model.ModelConfig;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

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

        ForwardInput resolve(ModelConfig config) {
            if (tokens != null && tokensFrom != null)
                throw new BadInputException("give --tokens or --tokens-from, not both");
            int[] ids;
            long offset = positionOffset == null ? 0 : positionOffset;
            if (tokensFrom != null) {
                Trace t = TraceFiles.read(tokensFrom);
                ids = t.tokens();
                if (positionOffset == null) offset = t.positionOffset();
            } else if (tokens != null) {
                ids = tokens;
            } else {
                ids = defaultTokens(config);
            }
            if (ids.length == 0) throw new BadInputException("--tokens: no tokens given");
            if (offset < 0) throw new BadInputException("--position-offset must be >= 0, got " + offset);
            for (int i = 0; i < ids.length; i++)
                if (ids[i] < 0 || ids[i] >= config.vocabSize)
                    throw new BadInputException("token id " + ids[i] + " at index " + i + " is outside the vocabulary [0, " + config.vocabSize + ")");
            return new ForwardInput(ids, offset);
        }
    }

    /** BOS (when the config names one) followed by ids spread evenly over the vocabulary: deterministic and documented. */
    static int[] defaultTokens(ModelConfig c) {
        int[] ids = new int[8];
        int start = 0;
        if (!c.bosTokenIds.isEmpty() && c.bosTokenIds.get(0) < c.vocabSize) ids[start++] = c.bosTokenIds.get(0);
        for (int i = start; i < ids.length; i++) ids[i] = (int) ((long) (i * 7919 + 13) % c.vocabSize);
        return ids;
    }

    /** Outputs never land inside the model folder, and never replace a file without --force. */
    static void checkOutput(Path out, Path modelDir, boolean force) {
        Path o = out.toAbsolutePath().normalize();
        Path m = modelDir.toAbsolutePath().normalize();
        try {
            if (Files.exists(m)) m = m.toRealPath();
            Path parent = o.getParent();
            if (parent != null && Files.exists(parent)) o = parent.toRealPath().resolve(o.getFileName());
        } catch (java.io.IOException ignored) {
            // fall back to the normalised paths
        }
        if (o.startsWith(m)) throw new BadInputException(out + ": refusing to write inside the model folder " + modelDir);
        if (Files.isDirectory(out)) throw new BadInputException(out + ": is a directory");
        if (Files.exists(out) && !force) throw new BadInputException(out + ": exists; pass --force to replace it");
    }

    static String join(int[] ids) {
        return Arrays.toString(ids);
    }
}
