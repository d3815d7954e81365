/*
 * Token filter factory for parameterless (or pre-parsed) filters: wraps a function that decorates
 * a TokenStream. The Normalizing variant is also applied by normalizers and to query terms of
 * wildcard/prefix/fuzzy queries (only for filters that work char-by-char, e.g. asciifolding).
 */
package org.portal.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;

import java.util.function.Function;

class SimpleTokenFilterFactory extends AbstractTokenFilterFactory {

    private final Function<TokenStream, TokenStream> filter;

    SimpleTokenFilterFactory(String name, Function<TokenStream, TokenStream> filter) {
        super(name);
        this.filter = filter;
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return filter.apply(tokenStream);
    }

    static final class Normalizing extends SimpleTokenFilterFactory implements NormalizingTokenFilterFactory {
        Normalizing(String name, Function<TokenStream, TokenStream> filter) {
            super(name, filter);
        }
    }
}
