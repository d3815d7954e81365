/*
 * Drops tokens whose text was already emitted, either anywhere earlier in the stream or (with
 * only_on_same_position) only at the same position; same semantics as Elasticsearch's "unique".
 */
package org.portal.analysis;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.PositionIncrementAttribute;

import java.io.IOException;

final class UniqueTokenFilter extends TokenFilter {

    private final CharTermAttribute termAttr = addAttribute(CharTermAttribute.class);
    private final PositionIncrementAttribute posIncAttr = addAttribute(PositionIncrementAttribute.class);
    private final CharArraySet seen = new CharArraySet(8, false);
    private final boolean onlyOnSamePosition;

    UniqueTokenFilter(TokenStream in, boolean onlyOnSamePosition) {
        super(in);
        this.onlyOnSamePosition = onlyOnSamePosition;
    }

    @Override
    public boolean incrementToken() throws IOException {
        while (input.incrementToken()) {
            char[] term = termAttr.buffer();
            int length = termAttr.length();
            if (onlyOnSamePosition && posIncAttr.getPositionIncrement() > 0) {
                seen.clear();
            }
            if (seen.contains(term, 0, length) == false) {
                seen.add(new String(term, 0, length));
                return true;
            }
        }
        return false;
    }

    @Override
    public void reset() throws IOException {
        super.reset();
        seen.clear();
    }
}
