/*
 * "word_delimiter_graph" and "word_delimiter": split tokens on case changes, letter/digit
 * transitions and non-alphanumerics (python3-django -> python, 3, django), with the same
 * parameters and defaults as Elasticsearch's factories.
 */
package org.portal.analysis;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterIterator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.TokenFilterFactory;

import java.util.List;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

final class WordDelimiterTokenFilterFactory extends AbstractTokenFilterFactory {

    private static final Pattern TYPE_RULE = Pattern.compile("(.*)\\s*=>\\s*(.*)\\s*$");

    private final boolean graph;
    private final byte[] charTypeTable;
    private final int flags;
    private final CharArraySet protoWords;
    private final boolean adjustOffsets;

    WordDelimiterTokenFilterFactory(Environment env, String name, Settings settings, boolean graph) {
        super(name);
        this.graph = graph;
        List<String> typeRules = Analysis.getWordList(env, settings, "type_table");
        this.charTypeTable = typeRules == null ? WordDelimiterIterator.DEFAULT_WORD_DELIM_TABLE : parseTypes(typeRules);
        int f = 0;
        f |= flag(settings, "generate_word_parts", true, WordDelimiterGraphFilter.GENERATE_WORD_PARTS);
        f |= flag(settings, "generate_number_parts", true, WordDelimiterGraphFilter.GENERATE_NUMBER_PARTS);
        f |= flag(settings, "catenate_words", false, WordDelimiterGraphFilter.CATENATE_WORDS);
        f |= flag(settings, "catenate_numbers", false, WordDelimiterGraphFilter.CATENATE_NUMBERS);
        f |= flag(settings, "catenate_all", false, WordDelimiterGraphFilter.CATENATE_ALL);
        f |= flag(settings, "split_on_case_change", true, WordDelimiterGraphFilter.SPLIT_ON_CASE_CHANGE);
        f |= flag(settings, "preserve_original", false, WordDelimiterGraphFilter.PRESERVE_ORIGINAL);
        f |= flag(settings, "split_on_numerics", true, WordDelimiterGraphFilter.SPLIT_ON_NUMERICS);
        f |= flag(settings, "stem_english_possessive", true, WordDelimiterGraphFilter.STEM_ENGLISH_POSSESSIVE);
        f |= flag(settings, "ignore_keywords", false, WordDelimiterGraphFilter.IGNORE_KEYWORDS);
        this.flags = f; // WordDelimiterFilter uses the same flag values
        CharArraySet protectedWords = Analysis.getWordSet(env, settings, "protected_words");
        this.protoWords = protectedWords == null ? null : CharArraySet.copy(protectedWords);
        this.adjustOffsets = settings.getAsBoolean("adjust_offsets", true);
    }

    @Override
    @SuppressWarnings("deprecation")
    public TokenStream create(TokenStream in) {
        if (graph) {
            return new WordDelimiterGraphFilter(in, adjustOffsets, charTypeTable, flags, protoWords);
        }
        return new WordDelimiterFilter(in, charTypeTable, flags, protoWords);
    }

    @Override
    public TokenFilterFactory getSynonymFilter() {
        throw new IllegalArgumentException("Token filter [" + name() + "] cannot be used to parse synonyms");
    }

    private static int flag(Settings settings, String key, boolean defaultValue, int bit) {
        return settings.getAsBoolean(key, defaultValue) ? bit : 0;
    }

    /** Parses "c => ALPHA" style rules into a character type table. */
    @SuppressWarnings("deprecation")
    static byte[] parseTypes(List<String> rules) {
        TreeMap<Character, Byte> typeMap = new TreeMap<>();
        for (String rule : rules) {
            Matcher m = TYPE_RULE.matcher(rule);
            if (m.find() == false) {
                throw new IllegalArgumentException("Invalid mapping rule : [" + rule + "]");
            }
            String lhs = CharFilters.unescape(m.group(1).trim());
            if (lhs.length() != 1) {
                throw new IllegalArgumentException("Invalid Mapping Rule : [" + rule + "]. Only a single character is allowed.");
            }
            String type = m.group(2).trim();
            byte value = switch (type) {
                case "LOWER" -> (byte) WordDelimiterFilter.LOWER;
                case "UPPER" -> (byte) WordDelimiterFilter.UPPER;
                case "ALPHA" -> (byte) WordDelimiterFilter.ALPHA;
                case "DIGIT" -> (byte) WordDelimiterFilter.DIGIT;
                case "ALPHANUM" -> (byte) WordDelimiterFilter.ALPHANUM;
                case "SUBWORD_DELIM" -> (byte) WordDelimiterFilter.SUBWORD_DELIM;
                default -> throw new IllegalArgumentException("Invalid Mapping Rule : [" + rule + "]");
            };
            typeMap.put(lhs.charAt(0), value);
        }
        char max = typeMap.isEmpty() ? 0 : typeMap.lastKey();
        byte[] types = new byte[Math.max(max + 1, WordDelimiterIterator.DEFAULT_WORD_DELIM_TABLE.length)];
        for (int i = 0; i < types.length; i++) {
            types[i] = WordDelimiterIterator.getType(i);
        }
        typeMap.forEach((c, t) -> types[c] = t);
        return types;
    }
}
