package modeldiff.model;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Recognises the model formats modeldiff does not read, by their first bytes, so a user who hands one over gets a
 * sentence naming the format and the way to a supported one instead of a safetensors parse error.
 */
public final class FileFormats {
    private FileFormats() {
    }

    /**
     * The one-line refusal for a file of a known foreign format, or null when the bytes are not one.
     * GGUF starts with "GGUF" (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md); a PyTorch checkpoint
     * (.bin / .pt since torch 1.6) is a zip archive, "PK\3\4"; a pickle-only checkpoint starts with the PROTO opcode 0x80.
     */
    public static String refusal(Path file, byte[] head) {
        if (startsWith(head, 'G', 'G', 'U', 'F'))
            return file + ": GGUF is not supported (yet); modeldiff reads Hugging Face releases (config.json + *.safetensors): "
                    + "use the original release, or load the GGUF with transformers (from_pretrained(..., gguf_file=...)) and save_pretrained() it";
        if (startsWith(head, 'P', 'K', 3, 4) || (head.length > 1 && (head[0] & 0xff) == 0x80 && head[1] >= 2 && head[1] <= 5))
            return file + ": a PyTorch checkpoint (pickle) is not supported; modeldiff reads *.safetensors: "
                    + "convert it with transformers (from_pretrained() then save_pretrained(safe_serialization=True))";
        String name = file.getFileName() == null ? "" : file.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
        if (name.endsWith(".onnx")) return file + ": ONNX is not supported; modeldiff reads Hugging Face releases (config.json + *.safetensors)";
        return null;
    }

    /** {@link #refusal(Path, byte[])} on a file's first bytes; null when it cannot be read or is not a known format. */
    public static String refusal(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return refusal(file, in.readNBytes(8));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static boolean startsWith(byte[] head, int... magic) {
        if (head.length < magic.length) return false;
        for (int i = 0; i < magic.length; i++) if ((head[i] & 0xff) != magic[i]) return false;
        return true;
    }
}
