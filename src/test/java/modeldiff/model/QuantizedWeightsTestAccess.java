package modeldiff.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** QuantizedWeightsTest's release copier for tests in other packages. */
public final class QuantizedWeightsTestAccess {
    private QuantizedWeightsTestAccess() {
    }

    public static Path copyWithout(Path src, Path dir, String... remove) throws IOException {
        Map<String, QuantizedWeightsTest.Raw> edit = new LinkedHashMap<>();
        for (String r : remove) edit.put(r, QuantizedWeightsTest.Raw.NONE);
        return QuantizedWeightsTest.copy(src, dir, edit);
    }

    /** A copy with stored byte {@code at} of tensor {@code name} set to {@code value}. */
    public static Path copyWithByte(Path src, Path dir, String name, int at, int value) throws IOException {
        QuantizedWeightsTest.Raw r = QuantizedWeightsTest.raw(src, name);
        byte[] b = r.data().clone();
        b[at] = (byte) value;
        return QuantizedWeightsTest.copy(src, dir, Map.of(name, new QuantizedWeightsTest.Raw(r.dtype(), r.shape(), b)));
    }

    /** A copy with tensor {@code name} replaced by an F32 [rows, cols] of ones. */
    public static Path copyWithF32(Path src, Path dir, String name, int rows, int cols) throws IOException {
        byte[] b = new byte[rows * cols * 4];
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) buf.putFloat(1f);
        return QuantizedWeightsTest.copy(src, dir, Map.of(name, new QuantizedWeightsTest.Raw("F32", new long[]{rows, cols}, b)));
    }

    /** A copy with one extra 4×4 F32 tensor of ones. */
    public static Path copyWithExtra(Path src, Path dir, String name) throws IOException {
        byte[] ones = new byte[64];
        java.nio.ByteBuffer.wrap(ones).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(new float[]{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
        return QuantizedWeightsTest.copy(src, dir, Map.of(name, new QuantizedWeightsTest.Raw("F32", new long[]{4, 4}, ones)));
    }
}
