package modeldiff.util;

import modeldiff.model.BadInputException;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * Outputs appear whole or not at all: bytes go to a hidden temporary file beside the target
 * ({@code .NAME.<random>.tmp}), are forced to disk, then renamed over it. A run killed half-way leaves at most that
 * temporary file, never a truncated report or trace under the target's name.
 * <p>
 * The temporary file is created like any new file (mode 0666 less the umask, so 0644 under the usual 022), not with
 * {@link Files#createTempFile}'s 0600: the final output must be readable like any other file the user writes.
 */
public final class AtomicFiles {
    private static final SecureRandom RANDOM = new SecureRandom();

    private AtomicFiles() {
    }

    @FunctionalInterface
    public interface Body {
        void write(OutputStream out) throws IOException;
    }

    /** The hidden temporary name used for {@code target}; {@link #isTemporary} recognises it. */
    static Path temporaryFor(Path abs) {
        byte[] r = new byte[8];
        RANDOM.nextBytes(r);
        return abs.resolveSibling("." + abs.getFileName() + "." + HexFormat.of().formatHex(r) + ".tmp");
    }

    /** True for a file name this class uses while writing (what an interrupted run may leave behind). */
    public static boolean isTemporary(String fileName) {
        return fileName.matches("\\..+\\.[0-9a-f]{16}\\.tmp");
    }

    public static void write(Path target, Body body) {
        Path abs = target.toAbsolutePath().normalize();
        Path dir = abs.getParent();
        try {
            Files.createDirectories(dir);
            Path tmp = temporaryFor(abs);
            try {
                // CREATE_NEW without file attributes: the process umask decides the mode, as for any other new file.
                try (OutputStream out = Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                    body.write(out);
                }
                try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                    ch.force(true);
                }
                try {
                    Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
                }
                syncDirectory(dir);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new BadInputException(target + ": cannot write: " + reason(e), e);
        }
    }

    /** An I/O failure in words, without the exception's class name (the CLI shows it as the one line). */
    public static String reason(IOException e) {
        if (e instanceof java.nio.file.AccessDeniedException) return "permission denied: " + ((java.nio.file.FileSystemException) e).getFile();
        if (e instanceof java.nio.file.NoSuchFileException) return "no such file or directory: " + ((java.nio.file.FileSystemException) e).getFile();
        if (e instanceof java.nio.file.FileAlreadyExistsException) return "already exists: " + ((java.nio.file.FileSystemException) e).getFile();
        if (e instanceof java.nio.file.FileSystemException f)
            return (f.getReason() == null ? "failed" : f.getReason()) + ": " + f.getFile();
        return String.valueOf(e.getMessage());
    }

    /** Makes the rename itself durable where the platform allows opening a directory; best effort. */
    private static void syncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | RuntimeException ignored) {
            // not supported here (e.g. some file systems): the data itself was forced already
        }
    }

    public static void writeString(Path target, String text) {
        write(target, out -> out.write(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }

    public static void writeBytes(Path target, byte[] bytes) {
        write(target, out -> out.write(bytes));
    }
}
