package modeldiff.trace;

import modeldiff.model.BadInputException;
import modeldiff.model.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TraceFilesTest {
    @TempDir
    Path tmp;

    private static Trace sample() {
        Random rnd = new Random(7);
        Trace t = new Trace("test", "float64", "cpu", new int[]{2, 5, 9}, 4093);
        for (String name : new String[]{"embed", "layers.0", "logits"}) {
            double[] d = new double[3 * 5];
            for (int i = 0; i < d.length; i++) d[i] = rnd.nextGaussian() * Math.pow(10, rnd.nextInt(20) - 10);
            t.put(name, 5, d);
        }
        t.putExtra("planted", "[\"act.gelu_exact\"]");
        return t;
    }

    @Test
    void float64RoundTripIsBitIdentical() {
        Trace t = sample();
        Path p = tmp.resolve("t.safetensors");
        TraceFiles.write(t, p, DType.F64);
        Trace back = TraceFiles.read(p);
        assertEquals(t.probeNames(), back.probeNames());
        assertArrayEquals(t.tokens(), back.tokens());
        assertEquals(4093, back.positionOffset());
        assertEquals("float64", back.dtype());
        assertEquals("[\"act.gelu_exact\"]", back.extra().get("planted"));
        for (String n : t.probeNames()) {
            double[] a = t.probe(n).data(), b = back.probe(n).data();
            for (int i = 0; i < a.length; i++)
                assertEquals(Double.doubleToRawLongBits(a[i]), Double.doubleToRawLongBits(b[i]), n + "[" + i + "]");
        }
        // Writing what was read gives the same bytes: the format is deterministic.
        Path p2 = tmp.resolve("t2.safetensors");
        TraceFiles.write(back, p2, DType.F64);
        assertArrayEquals(readAll(p), readAll(p2));
    }

    @Test
    void float32StorageRoundsOnceToFloat() {
        Trace t = sample();
        Path p = tmp.resolve("t32.safetensors");
        TraceFiles.write(t, p, DType.F32);
        Trace back = TraceFiles.read(p);
        double[] a = t.probe("embed").data(), b = back.probe("embed").data();
        for (int i = 0; i < a.length; i++) assertEquals((double) (float) a[i], b[i], 0.0);
    }

    @Test
    void rejectsNonTraceSafetensors() {
        Path p = tmp.resolve("plain.safetensors");
        new modeldiff.model.SafeTensorsWriter().add("w", DType.F32, new long[]{1}, new double[]{1}).write(p);
        String msg = assertThrows(BadInputException.class, () -> TraceFiles.read(p)).getMessage();
        assertTrue(msg.contains("__metadata__.format"), msg);
    }

    private static byte[] readAll(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
