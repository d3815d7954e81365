/*
 * Tokenizer providers: keyword (buffer_size), whitespace (max_token_length), letter, pattern
 * (pattern, flags, group), char_group (tokenize_on_chars, max_token_length) and edge_ngram /
 * ngram (min_gram, max_gram, token_chars, custom_token_chars), with Elasticsearch's defaults.
 */
package org.portal.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.core.KeywordTokenizer;
import org.apache.lucene.analysis.core.LetterTokenizer;
import org.apache.lucene.analysis.core.WhitespaceTokenizer;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenizer;
import org.apache.lucene.analysis.ngram.NGramTokenizer;
import org.apache.lucene.analysis.pattern.PatternTokenizer;
import org.apache.lucene.analysis.util.CharTokenizer;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.TokenizerFactory;

import java.util.List;
import java.util.function.IntPredicate;
import java.util.regex.Pattern;

final class Tokenizers {

    private Tokenizers() {}

    static TokenizerFactory keyword(IndexSettings is, Environment env, String name, Settings s) {
        int bufferSize = s.getAsInt("buffer_size", 256);
        return TokenizerFactory.newFactory(name, () -> new KeywordTokenizer(bufferSize));
    }

    static TokenizerFactory whitespace(IndexSettings is, Environment env, String name, Settings s) {
        int maxTokenLength = s.getAsInt("max_token_length", CharTokenizer.DEFAULT_MAX_WORD_LEN);
        return TokenizerFactory.newFactory(name, () -> new WhitespaceTokenizer(maxTokenLength));
    }

    static TokenizerFactory letter(IndexSettings is, Environment env, String name, Settings s) {
        return TokenizerFactory.newFactory(name, LetterTokenizer::new);
    }

    static TokenizerFactory pattern(IndexSettings is, Environment env, String name, Settings s) {
        String regex = s.get("pattern", "\\W+");
        Pattern pattern = Regex.compile(regex, s.get("flags"));
        int group = s.getAsInt("group", -1);
        return TokenizerFactory.newFactory(name, () -> new PatternTokenizer(pattern, group));
    }

    static TokenizerFactory charGroup(IndexSettings is, Environment env, String name, Settings s) {
        int maxTokenLength = s.getAsInt("max_token_length", CharTokenizer.DEFAULT_MAX_WORD_LEN);
        IntPredicate separator = c -> false;
        for (String spec : s.getAsList("tokenize_on_chars")) {
            String single = spec.startsWith("\\") ? CharFilters.unescape(spec) : spec;
            if (single.length() == 1) {
                int ch = single.charAt(0);
                separator = separator.or(c -> c == ch);
            } else {
                separator = separator.or(charClass(spec));
            }
        }
        IntPredicate isSeparator = separator;
        return TokenizerFactory.newFactory(name, () -> new CharTokenizer(TokenStream.DEFAULT_TOKEN_ATTRIBUTE_FACTORY, maxTokenLength) {
            @Override
            protected boolean isTokenChar(int c) {
                return isSeparator.test(c) == false;
            }
        });
    }

    static TokenizerFactory ngram(IndexSettings is, String name, Settings s, boolean edge) {
        int minGram = s.getAsInt("min_gram", 1);
        int maxGram = s.getAsInt("max_gram", 2);
        if (edge == false) {
            checkNgramDiff(is, minGram, maxGram, "NGram Tokenizer");
        }
        List<String> classes = s.getAsList("token_chars");
        String custom = s.get("custom_token_chars", "");
        IntPredicate matcher = null;
        for (String cls : classes) {
            IntPredicate p = cls.equals("custom") ? c -> custom.indexOf(c) >= 0 : charClass(cls);
            matcher = matcher == null ? p : matcher.or(p);
        }
        IntPredicate tokenChar = matcher;
        if (tokenChar == null) {
            return TokenizerFactory.newFactory(
                name,
                () -> edge ? new EdgeNGramTokenizer(minGram, maxGram) : new NGramTokenizer(minGram, maxGram)
            );
        }
        return TokenizerFactory.newFactory(name, () -> edge ? new EdgeNGramTokenizer(minGram, maxGram) {
            @Override
            protected boolean isTokenChar(int c) {
                return tokenChar.test(c);
            }
        } : new NGramTokenizer(minGram, maxGram) {
            @Override
            protected boolean isTokenChar(int c) {
                return tokenChar.test(c);
            }
        });
    }

    static void checkNgramDiff(IndexSettings is, int minGram, int maxGram, String what) {
        int allowed = is.getMaxNgramDiff();
        if (maxGram - minGram > allowed) {
            throw new IllegalArgumentException("The difference between max_gram and min_gram in " + what
                + " must be less than or equal to: [" + allowed + "] but was [" + (maxGram - minGram)
                + "]. This limit can be set by changing the [" + IndexSettings.MAX_NGRAM_DIFF_SETTING.getKey()
                + "] index level setting.");
        }
    }

    /** Character classes accepted by token_chars / tokenize_on_chars. */
    static IntPredicate charClass(String name) {
        return switch (name) {
            case "letter" -> Character::isLetter;
            case "digit" -> Character::isDigit;
            case "whitespace" -> Character::isWhitespace;
            case "punctuation" -> c -> switch (Character.getType(c)) {
                case Character.START_PUNCTUATION, Character.END_PUNCTUATION, Character.OTHER_PUNCTUATION,
                    Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION,
                    Character.FINAL_QUOTE_PUNCTUATION -> true;
                default -> false;
            };
            case "symbol" -> c -> switch (Character.getType(c)) {
                case Character.CURRENCY_SYMBOL, Character.MATH_SYMBOL, Character.OTHER_SYMBOL, Character.MODIFIER_SYMBOL -> true;
                default -> false;
            };
            default -> throw new IllegalArgumentException("Unknown token type: '" + name
                + "', must be one of [letter, digit, whitespace, punctuation, symbol, custom]");
        };
    }
}
