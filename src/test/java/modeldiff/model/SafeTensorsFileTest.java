package modeldiff.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsFileTest {
    @TempDir
    Path tmp;

    private Path file(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = tmp.resolve("t" + System.nanoTime() + ".safetensors");
        Files.write(p, b.array());
        return p;
    }

    private String error(String header, int dataBytes) throws IOException {
        Path p = file(header, dataBytes);
        return assertThrows(BadInputException.class, () -> SafeTensorsFile.open(p)).getMessage();
    }

    @Test
    void decodesEachFloatTypeExactly() {
        // Values chosen exactly representable in every type, so the widened doubles must equal them exactly.
        double[] vals = {1.5, -2.25, 0.0078125, 30.5};
        Path p = tmp.resolve("all.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (DType d : new DType[]{DType.F64, DType.F32, DType.F16, DType.BF16}) w.add(d.name(), d, new long[]{2, 2}, vals);
        w.write(p);
        SafeTensorsFile f = SafeTensorsFile.open(p);
        for (DType d : new DType[]{DType.F64, DType.F32, DType.F16, DType.BF16}) {
            TensorInfo t = f.tensors().get(d.name());
            assertEquals(d, t.dtype());
            assertArrayEquals(vals, TensorStore.readDoubles(t, 0, 4), 0.0, d.name());
        }
    }

    @Test
    void halfPrecisionBitPatternsDecodeAsIeee() {
        // Known binary16 encodings (IEEE 754-2008 table): 0x3c00 = 1, 0xc000 = -2, 0x7bff = 65504, 0x0001 = 2^-24.
        assertEquals(1.0f, HalfBits.toFloat(0x3c00));
        assertEquals(-2.0f, HalfBits.toFloat(0xc000));
        assertEquals(65504f, HalfBits.toFloat(0x7bff));
        assertEquals(0x1p-24f, HalfBits.toFloat(0x0001));
        assertEquals(Float.POSITIVE_INFINITY, HalfBits.toFloat(0x7c00));
        assertTrue(Float.isNaN(HalfBits.toFloat(0x7e00)));
    }

    @Test
    void rejectsHeaderLongerThanFile() throws IOException {
        Path p = tmp.resolve("short.safetensors");
        Files.write(p, ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).putInt(0).array());
        assertTrue(assertThrows(BadInputException.class, () -> SafeTensorsFile.open(p)).getMessage().contains("impossible"));
    }

    @Test
    void rejectsTinyFile() throws IOException {
        Path p = tmp.resolve("tiny.safetensors");
        Files.write(p, new byte[3]);
        assertTrue(assertThrows(BadInputException.class, () -> SafeTensorsFile.open(p)).getMessage().contains("too short"));
    }

    @Test
    void rejectsMalformedEntries() throws IOException {
        assertTrue(error("{not json", 0).contains("not valid JSON"));
        assertTrue(error("[1,2]", 0).contains("JSON object"));
        assertTrue(error("{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4).contains("unknown dtype"));
        assertTrue(error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8).contains("needs 8 bytes"));
        assertTrue(error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 8).contains("reversed"));
        assertTrue(error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 2).contains("past the data section"));
        assertTrue(error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4).contains("overflows"));
        assertTrue(error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4).contains("non-negative"));
        assertTrue(error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4)
                .contains("duplicate entry: 'a'"), "duplicate names are refused");
        assertTrue(error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)
                .contains("overlaps"));
        assertTrue(error("{\"__metadata__\":{\"k\":3}}", 0).contains("must be a string"));
    }
}
