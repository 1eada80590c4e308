package modeldiff.tokenizer;

import com.hubspot.jinjava.el.TypeConvertingMapELResolver;
import com.hubspot.jinjava.el.ext.JinjavaBeanELResolver;
import com.hubspot.jinjava.el.ext.JinjavaListELResolver;
import com.hubspot.jinjava.lib.exptest.ExpTest;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.util.ForLoop;
import jinjava.javax.el.ArrayELResolver;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The only way a chat template reaches values: read-only lookups in the plain data it was given (maps, lists,
 * strings, numbers), loop.* properties, Python's string and dict methods ({@link PyMethods}), and jinjava's own
 * filters and tests. Any other property or method, on any object, is refused with {@link TemplateAbort}: no Java
 * objects, no reflection ({@code ''.getClass()}, the CVE-2020-12668 route), no writes.
 */
final class TemplateSandbox extends ELResolver {
    private static final Set<String> LOOP_PROPERTIES = Set.of("index", "index0", "revindex", "revindex0", "first", "last",
            "length", "depth", "depth0", "previtem", "nextitem");
    private final ELResolver list = new JinjavaListELResolver(true);
    private final ELResolver map = new TypeConvertingMapELResolver(true);
    private final ELResolver array = new ArrayELResolver(true);
    private final ELResolver bean = new JinjavaBeanELResolver(true);

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        if (base == null) return null;
        if (base instanceof Map) return map.getValue(context, base, property);
        if (base instanceof List) return list.getValue(context, base, property);
        if (base.getClass().isArray()) return array.getValue(context, base, property);
        if (base instanceof ForLoop && LOOP_PROPERTIES.contains(String.valueOf(property))) return bean.getValue(context, base, property);
        if (base instanceof Filter || base instanceof ExpTest || base instanceof ForLoop) {
            // jinjava looks a method's name up as a property before invoking it: nothing there, invoke decides.
            context.setPropertyResolved(true);
            return null;
        }
        if (base instanceof String || base instanceof Number || base instanceof Boolean) {
            String p = String.valueOf(property);
            if (p.equals("class") || p.startsWith("__"))   // jinja2's sandbox refuses these too (SecurityError)
                throw new TemplateAbort("chat template: attribute '" + p + "' of a " + kind(base) + " is not allowed");
            context.setPropertyResolved(true);   // Jinja: any other attribute a string lacks is undefined
            return null;
        }
        throw new TemplateAbort("chat template: attribute '" + property + "' of a " + kind(base) + " is not allowed");
    }

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        String name = String.valueOf(method);
        if (base instanceof Filter && name.equals("filter")
                || base instanceof ExpTest && (name.equals("evaluate") || name.equals("evaluateNegated")))
            return bean.invoke(context, base, method, paramTypes, params);
        if (base instanceof ForLoop && name.equals("cycle")) return bean.invoke(context, base, method, paramTypes, params);
        Object r = PyMethods.call(base, name, params == null ? new Object[0] : params);
        context.setPropertyResolved(true);
        return r;
    }

    static String kind(Object o) {
        if (o instanceof String) return "string";
        if (o instanceof Map) return "dict";
        if (o instanceof List) return "list";
        if (o instanceof Number) return "number";
        if (o instanceof Boolean) return "boolean";
        return "value";   // never the Java class name: the template learns nothing about the host
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
        throw new TemplateAbort("chat template: assigning to '" + property + "' is not allowed");
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return Object.class;
    }
}
