/*
 * Char filters: "mapping" (mappings / mappings_path, rules like "ph => f"), "pattern_replace"
 * (pattern, replacement, flags) and "html_strip" (escaped_tags), plus the escape parser shared
 * with other rule formats (\n, \t, \r, \b, \f, \\, \\uXXXX).
 */
package org.portal.analysis;

import org.apache.lucene.analysis.charfilter.HTMLStripCharFilter;
import org.apache.lucene.analysis.charfilter.MappingCharFilter;
import org.apache.lucene.analysis.charfilter.NormalizeCharMap;
import org.apache.lucene.analysis.pattern.PatternReplaceCharFilter;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractCharFilterFactory;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.NormalizingCharFilterFactory;

import java.io.Reader;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

final class CharFilters {

    private CharFilters() {}

    /** "mapping": replaces each left-hand side string by its right-hand side. */
    static final class Mapping extends AbstractCharFilterFactory implements NormalizingCharFilterFactory {
        private static final Pattern RULE = Pattern.compile("(.*)\\s*=>\\s*(.*)\\s*$");
        private final NormalizeCharMap map;

        Mapping(IndexSettings is, Environment env, String name, Settings settings) {
            super(name);
            List<String> rules = Analysis.getWordList(env, settings, "mappings");
            if (rules == null) {
                throw new IllegalArgumentException("mapping requires either `mappings` or `mappings_path` to be configured");
            }
            NormalizeCharMap.Builder builder = new NormalizeCharMap.Builder();
            for (String rule : rules) {
                Matcher m = RULE.matcher(rule);
                if (m.find() == false) {
                    throw new IllegalArgumentException("Invalid mapping rule : [" + rule + "]");
                }
                String lhs = unescape(m.group(1).trim());
                String rhs = unescape(m.group(2).trim());
                if (lhs.isEmpty()) {
                    throw new IllegalArgumentException("Invalid mapping rule: [" + rule + "]. Illegal mapping.");
                }
                builder.add(lhs, rhs);
            }
            this.map = builder.build();
        }

        @Override
        public Reader create(Reader reader) {
            return new MappingCharFilter(map, reader);
        }
    }

    /** "pattern_replace": regex replacement with $1-style group references. */
    static final class PatternReplace extends AbstractCharFilterFactory implements NormalizingCharFilterFactory {
        private final Pattern pattern;
        private final String replacement;

        PatternReplace(IndexSettings is, Environment env, String name, Settings settings) {
            super(name);
            String regex = settings.get("pattern");
            if (regex == null || regex.isEmpty()) {
                throw new IllegalArgumentException("pattern is missing for [" + name + "] char filter of type 'pattern_replace'");
            }
            this.pattern = Regex.compile(regex, settings.get("flags"));
            this.replacement = settings.get("replacement", "");
        }

        @Override
        public Reader create(Reader reader) {
            return new PatternReplaceCharFilter(pattern, replacement, reader);
        }
    }

    /** "html_strip": removes HTML markup and decodes entities, keeping escaped_tags. */
    static final class HtmlStrip extends AbstractCharFilterFactory {
        private final Set<String> escapedTags;

        HtmlStrip(IndexSettings is, Environment env, String name, Settings settings) {
            super(name);
            List<String> tags = settings.getAsList("escaped_tags");
            this.escapedTags = tags.isEmpty() ? null : new HashSet<>(tags);
        }

        @Override
        public Reader create(Reader reader) {
            return new HTMLStripCharFilter(reader, escapedTags);
        }
    }

    /** Resolves backslash escapes in a rule. */
    static String unescape(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '\\' || i + 1 >= s.length()) {
                out.append(c);
                continue;
            }
            char next = s.charAt(++i);
            switch (next) {
                case 'n' -> out.append('\n');
                case 't' -> out.append('\t');
                case 'r' -> out.append('\r');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'u' -> {
                    if (i + 4 >= s.length()) {
                        throw new IllegalArgumentException("Invalid escaped char in [" + s + "]");
                    }
                    out.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16));
                    i += 4;
                }
                default -> out.append(next);
            }
        }
        return out.toString();
    }
}
