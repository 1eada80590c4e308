package modeldiff.model;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The safetensors reader on arbitrary bytes. Invariant: every input either parses or throws
 * {@link BadInputException} (never another exception, never an allocation sized by the input's claims, never a
 * hang). Without JAZZER_FUZZ this runs the committed inputs in SafeTensorsFuzzTestInputs/ (regression mode, in every
 * `mvn test`); docs/reliability.md has the fuzzing command and the last long run.
 */
class SafeTensorsFuzzTest {
    static final Path NAME = Path.of("fuzz.safetensors");

    @FuzzTest
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void header(byte[] file) {
        SafeTensorsFile f;
        try {
            f = SafeTensorsFile.parse(NAME, file);
        } catch (BadInputException e) {
            FuzzInvariants.oneLine(e);
            return;
        }
        // What parsed must be consistent: every range inside the file, sized by shape x dtype, none sharing a byte.
        java.util.List<TensorInfo> ts = new java.util.ArrayList<>(f.tensors().values());
        ts.sort(java.util.Comparator.comparingLong(TensorInfo::fileOffset));
        long reach = 0;
        for (TensorInfo t : ts) {
            if (t.fileOffset() < 8 || t.fileOffset() + t.byteLength() > file.length)
                throw new AssertionError("range outside the file: " + t);
            if (t.byteLength() != t.elementCount() * t.dtype().bytes)
                throw new AssertionError("size mismatch: " + t);
            if (t.byteLength() > 0 && t.fileOffset() < reach) throw new AssertionError("overlap at " + t.name());
            if (t.byteLength() > 0) reach = Math.max(reach, t.fileOffset() + t.byteLength());
        }
    }
}
